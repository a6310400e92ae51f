package test
p := [1, "a", [true], {"k": null}]
