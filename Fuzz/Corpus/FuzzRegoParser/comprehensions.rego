package test
p := [x * 2 | some x in [1, 2, 3]]
