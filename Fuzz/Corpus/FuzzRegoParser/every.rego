package test
p if every x in input.xs { x > 0 }
