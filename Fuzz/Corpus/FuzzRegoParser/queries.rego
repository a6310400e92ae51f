package test
p := 1
