package test
p if not input.missing
