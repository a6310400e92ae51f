# An OPA-Envoy policy, as Envoy's ext_authz with OPA runs it: `input` is the CheckRequest as OPA-Envoy presents it.
# Reads are open to any workload of the mesh; writes need the `admins` group in the caller's verified token.
package envoy.authz

import rego.v1

default allow := false

allow if {
	input.attributes.request.http.method == "GET"
	startswith(input.attributes.source.principal, "spiffe://cluster.local/")
}

allow if {
	input.attributes.request.http.method in {"POST", "PUT"}
	"admins" in claims.groups
}

# The token's claims: the proxy verified it (RequestAuthentication), so decoding is enough here.
claims := payload if {
	[_, payload, _] := io.jwt.decode(bearer_token)
}

bearer_token := token if {
	header := input.attributes.request.http.headers.authorization
	startswith(header, "Bearer ")
	token := substring(header, count("Bearer "), -1)
}
