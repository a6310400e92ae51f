package test
p if { print("hello", 1, [1, "a"], {"k": {1}}, set(), null, true) }
