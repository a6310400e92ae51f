package test
p := [input.a.b, input["a"]["b"], input.a["b"], input["x-y"]]
