package envoy.authz_test

import rego.v1

import data.envoy.authz

request(method) := {"attributes": {
	"source": {"principal": "spiffe://cluster.local/ns/default/sa/sleep"},
	"request": {"http": {"method": method, "path": "/details/1", "headers": {}}},
}}

test_get_allowed if authz.allow with input as request("GET")

test_delete_denied if not authz.allow with input as request("DELETE")
