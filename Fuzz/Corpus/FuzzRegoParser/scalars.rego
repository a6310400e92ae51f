package test
p := 42
