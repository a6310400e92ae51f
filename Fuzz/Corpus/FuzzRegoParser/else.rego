package test
p := 1 if input.x == 1
else := 2 if input.x == 2
else := 3
