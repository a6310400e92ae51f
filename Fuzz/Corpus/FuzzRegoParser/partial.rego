package test
p contains x if { some x in input.xs; x > 1 }
