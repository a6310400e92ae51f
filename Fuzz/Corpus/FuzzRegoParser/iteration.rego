package test
p contains i if { some i; input.xs[i] > 1 }
