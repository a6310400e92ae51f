package test
allow if input.user == "admin"
p if allow with input as {"user": "admin"}
