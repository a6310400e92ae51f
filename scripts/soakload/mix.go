package main

// The policies the soak reloads and the requests it checks against them.
//
// Every policy file has two good revisions, A and B, that differ in what they say (other principals, methods,
// path forms, a Rego module written another way) but give the same decision for every request of the mix, so
// whichever mix of A and B files the server has loaded at any moment, each answer is known. Bad revisions fail
// to load: the last good set must keep serving. Each request of the mix would get another answer if the policy
// that decides it were missing, so a reload that dropped a policy shows as a wrong check.

type revision map[string]string // file name -> text

const header = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"

var revisionA = revision{
	// ALLOW for details: only productpage, only GET.
	"details-readers.yaml": header + `metadata: {name: details-readers, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/productpage"]}}]
    to: [{operation: {methods: ["GET"]}}]
`,
	// DENY of the upload path (any method but GET and HEAD) for upload, which has no ALLOW policy.
	"upload-deny.yaml": header + `metadata: {name: block-upload, namespace: default}
spec:
  selector: {matchLabels: {app: upload}}
  action: DENY
  rules:
  - to: [{operation: {ports: ["8080"], paths: ["/api/v1/profile/picture", "/api/v1/profile/picture/*"], notMethods: ["GET", "HEAD"]}}]
`,
	// ALLOW-nothing for the whole `restricted` namespace.
	"restricted-allow-nothing.yaml": header + `metadata: {name: allow-nothing, namespace: restricted}
spec: {}
`,
	// CUSTOM for ratings' /admin/*, decided by the Rego module below.
	"ratings-custom.yaml": header + `metadata: {name: ratings-admin, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  action: CUSTOM
  provider: {name: opa}
  rules:
  - to: [{operation: {paths: ["/admin/*"]}}]
`,
	"soak.rego": `package envoy.authz

import rego.v1

default allow := false

allow if input.attributes.request.http.headers["x-soak-role"] == "admin"
`,
}

var revisionB = revision{
	"details-readers.yaml": header + `metadata: {name: details-readers, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/productpage", "cluster.local/ns/default/sa/reviews"]}}]
    to: [{operation: {methods: ["GET", "HEAD"], paths: ["/api/*"]}}]
  - from: [{source: {namespaces: ["monitoring"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/metrics"]}}]
`,
	"upload-deny.yaml": header + `metadata: {name: block-upload, namespace: default, annotations: {incident: "INC-2041"}}
spec:
  selector: {matchLabels: {app: upload}}
  action: DENY
  rules:
  - to: [{operation: {ports: ["8080", "9080"], paths: ["/api/v1/profile/picture*"], notMethods: ["GET", "HEAD", "OPTIONS"]}}]
`,
	"restricted-allow-nothing.yaml": header + `metadata: {name: allow-nothing, namespace: restricted}
spec:
  action: ALLOW
`,
	"ratings-custom.yaml": header + `metadata: {name: ratings-admin, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  action: CUSTOM
  provider: {name: opa}
  rules:
  - to: [{operation: {paths: ["/admin", "/admin/*"]}}]
`,
	"soak.rego": `package envoy.authz

import rego.v1

admins := {"admin", "root"}

default allow := false

allow if {
	role := input.attributes.request.http.headers["x-soak-role"]
	role in admins
}
`,
}

// The bad revisions, in turn: a broken file next to the good ones, the DENY broken in place, the Rego module
// broken in place. A loader that skipped a broken file instead of refusing the set would lose the DENY (the
// upload POST would be allowed) or the provider (the CUSTOM policy would fail closed and deny the admin).
var badRevisions = []revision{
	{"broken.yaml": header + "metadata: {name: broken, namespace: default\nspec: {}\n"},
	{"upload-deny.yaml": header + `metadata: {name: block-upload, namespace: default}
spec:
  selector: {matchLabels: {app: upload}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/api/v1/profile/picture"], notMethods: ["GET"]}]
`},
	{"soak.rego": "package envoy.authz\n\nimport rego.v1\n\nallow if {\n\tinput.attributes.request.http.headers[\"x-soak-role\"] ==\n"},
}

// The extra file of the first bad revision, removed when a good revision is written.
const brokenExtra = "broken.yaml"

// One request of the mix and the answer it must get.
type check struct {
	name      string
	namespace string
	app       string
	principal string // the client's SPIFFE ID
	method    string
	path      string
	headers   [][2]string
	allow     bool
	reason    string // x-warden-reason of the denial
}

var mix = []check{
	{name: "details GET from productpage", namespace: "default", app: "details",
		principal: "spiffe://cluster.local/ns/default/sa/productpage", method: "GET", path: "/api/v1/items?page=2", allow: true},
	{name: "details DELETE from productpage", namespace: "default", app: "details",
		principal: "spiffe://cluster.local/ns/default/sa/productpage", method: "DELETE", path: "/api/v1/items/7",
		reason: "no_allow_matched"},
	{name: "details GET from another namespace", namespace: "default", app: "details",
		principal: "spiffe://cluster.local/ns/other/sa/crawler", method: "GET", path: "/api/v1/items",
		reason: "no_allow_matched"},
	{name: "upload POST (DENY)", namespace: "default", app: "upload",
		principal: "spiffe://cluster.local/ns/default/sa/web", method: "POST", path: "/api/v1/profile/picture",
		reason: "deny_matched"},
	{name: "upload GET", namespace: "default", app: "upload",
		principal: "spiffe://cluster.local/ns/default/sa/web", method: "GET", path: "/api/v1/profile/picture", allow: true},
	{name: "restricted GET (ALLOW-nothing)", namespace: "restricted", app: "vault",
		principal: "spiffe://cluster.local/ns/default/sa/web", method: "GET", path: "/secrets",
		reason: "no_allow_matched"},
	{name: "ratings admin (Rego allows)", namespace: "default", app: "ratings",
		principal: "spiffe://cluster.local/ns/default/sa/web", method: "GET", path: "/admin/users",
		headers: [][2]string{{"x-soak-role", "admin"}}, allow: true},
	{name: "ratings guest (Rego denies)", namespace: "default", app: "ratings",
		principal: "spiffe://cluster.local/ns/default/sa/web", method: "GET", path: "/admin/users",
		headers: [][2]string{{"x-soak-role", "guest"}}, reason: "custom_denied"},
	{name: "ratings public (no CUSTOM rule)", namespace: "default", app: "ratings",
		principal: "spiffe://cluster.local/ns/default/sa/web", method: "GET", path: "/public/1",
		headers: [][2]string{{"x-soak-role", "guest"}}, allow: true},
}
