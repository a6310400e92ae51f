package test
p := y if { y := 5 }
