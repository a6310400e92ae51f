package test
p := {1, 2} | {2, 3}
