package test

default allow := false

allow if {
  input.method == "GET"
  input.path == "/a"
}

allow if {
  input.method == "GET"
  input.path == "/b"
}

allow if {
  input.method == "POST"
  input.path == "/a"
}

allow if {
  input.method == "PUT"
  input.path == "/c"
}

allow if {
  input.method == "GET"
  input.path == "/c"
}

allow if {
  input.method == "DELETE"
  input.path == "/a"
}

allow if input.user == "root"

allow if {
  input.method in {"HEAD", "OPTIONS"}
}

allow if {
  "admin" = input.role
  input.path = "/admin"
}
