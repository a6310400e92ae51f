package envoy.authz

import rego.v1

default allow := false

allow if {
	input.attributes.request.http.method == "GET"
	some i, part in input.parsed_path
	part == "api"
	not deny
}

deny contains msg if {
	msg := sprintf("denied %v", [input.parsed_path])
	every p in input.parsed_path { p != "admin" }
} else := {"x": `raw`, "n": 1.5e3, "s": {1, 2} | {3}}

f(x) := y if y := x * 2 - 1 % 3
