# An OPA-Envoy authorization policy for a shop's API gateway: callers are identified by their mTLS principal
# (SPIFFE ID), end users by the claims Envoy's jwt_authn filter verified, and requests by method, path and
# headers. The decision is data.envoy.authz.allow; data.envoy.authz.response adds headers and a status.
package envoy.authz

import rego.v1

default allow := false

http := input.attributes.request.http

method := http.method

path := input.parsed_path

headers := http.headers

principal := input.attributes.source.principal

claims := input.attributes.metadata_context.filter_metadata["envoy.filters.http.jwt_authn"].verified_jwt

# Services by the SPIFFE ID of their workload.
services := {
	"spiffe://shop.local/ns/web/sa/frontend": "frontend",
	"spiffe://shop.local/ns/web/sa/mobile-bff": "mobile",
	"spiffe://shop.local/ns/orders/sa/checkout": "checkout",
	"spiffe://shop.local/ns/ops/sa/monitoring": "monitoring",
	"spiffe://shop.local/ns/ops/sa/admin-console": "admin-console",
}

caller := services[principal]

public_paths := {["health"], ["ready"], ["metrics"]}

token_valid if {
	claims.iss == "https://auth.shop.local"
	"shop-api" in claims.aud
	claims.exp > 1700000000
}

roles contains role if {
	token_valid
	some role in claims.roles
}

roles contains "admin" if {
	token_valid
	"platform-admins" in claims.groups
}

scopes := {s | some s in split(claims.scope, " ")} if token_valid

tenant_matches if headers["x-tenant-id"] == claims.tenant

# Requests that are refused whatever else holds.
deny contains "blocked user agent" if startswith(headers["user-agent"], "sqlmap")

deny contains "tenant mismatch" if {
	token_valid
	headers["x-tenant-id"]
	not tenant_matches
}

deny contains "expired token" if {
	claims.exp <= 1700000000
}

deny contains "write without request id" if {
	method in {"POST", "PUT", "PATCH", "DELETE"}
	not headers["x-request-id"]
}

allow if {
	path in public_paths
	method == "GET"
}

allow if {
	caller == "monitoring"
	method == "GET"
	path[0] == "internal"
}

allow if {
	caller in {"frontend", "mobile"}
	method == "GET"
	path[0] == "api"
	path[1] == "v1"
	path[2] in {"products", "reviews", "categories"}
	count(deny) == 0
}

allow if {
	caller in {"frontend", "mobile"}
	method in {"GET", "PUT"}
	path == ["api", "v1", "cart"]
	token_valid
	count(deny) == 0
}

allow if {
	caller == "checkout"
	method == "POST"
	path == ["api", "v1", "orders"]
	"orders:write" in scopes
	count(deny) == 0
}

allow if {
	method == "GET"
	path[0] == "api"
	path[1] == "v1"
	path[2] == "orders"
	order_owner(path[3])
	count(deny) == 0
}

allow if {
	"admin" in roles
	caller == "admin-console"
	glob.match("/admin/**", ["/"], http.path)
	count(deny) == 0
}

allow if {
	"support" in roles
	method == "GET"
	path[0] == "api"
	path[1] == "v1"
	path[2] in {"orders", "customers"}
	count(deny) == 0
}

order_owner(order_id) if {
	token_valid
	startswith(order_id, concat("-", [claims.tenant, claims.sub]))
}

response := {
	"allowed": allow,
	"headers": {"x-authz-caller": object.get(services, principal, "anonymous")},
	"http_status": status,
}

default status := 403

status := 200 if allow

status := 401 if {
	not allow
	not token_valid
	not caller
}
