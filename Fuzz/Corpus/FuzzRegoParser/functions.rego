package test
double(x) := x * 2
p := double(21)
