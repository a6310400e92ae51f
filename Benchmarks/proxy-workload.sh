# Sourced by proxy-load.sh and proxy-memory.sh (from Benchmarks/): the proxy benchmarks' shared workload.
#   seed_token                 the seed's demo token, which the proxy's RequestAuthentication verifies
#   proxy_workload WARDEN DIR  writes, under DIR, the identities (a CA, `details` — the workload and the upstream's
#                              server certificate — and `sleep`, the client), `server-policies/` (an ALLOW of GET
#                              and HEAD on /bench/* for the details workload) and `proxy-policies/` (its
#                              RequestAuthentication: the seed's issuer)
#   start_nginx DIR WORKERS [NAME=nginx]
#                              starts an nginx instance (pid in DIR/NAME.pid) with WORKERS processes and the `http`
#                              block's settings shared by the benchmarks; the servers come on standard input
#   bench_scratch              makes the scratch directory $work and an empty $pids; on exit the processes in $pids
#                              and every nginx instance are stopped and $work removed (left with KEEP_NGINX=1)
#   start_nginx_paths DIR WORKERS
#                              nginx as proxy-load.sh's peers, two instances of WORKERS processes each: the trivial
#                              upstream (`nginx`) on 18080 (plain HTTP) and the same over mTLS on 18443 (`direct`);
#                              and nginx enforcing (`nginx-enforcer`) on 18444 (mTLS, `auth_request` to `warden
#                              serve`'s HTTP ext_authz on 19181, then the upstream on 18080). The enforcer is a process
#                              of its own, as `warden proxy` is: were it one of the upstream's workers, its upstream
#                              hop would be answered in the same event loop, with no wake-up of another process, an
#                              overhead the proxy's path pays and nginx's would not.
seed_token=$(python3 -c 'import re,sys; t=open("../Tests/WardenTesting/SeedToken.swift").read(); print("".join(re.findall(r"\"(\.?eyJ[^\"]*|\.[A-Za-z0-9_-]+)\"", t)))')

bench_scratch() {
    work=$(mktemp -d)
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -z "${KEEP_NGINX:-}" ]; then
        for pidfile in "$work"/nginx*.pid; do kill "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null || true; done
        rm -rf "$work"
    fi
}

proxy_workload() {
    local warden=$1 work=$2
    "$warden" ca init --dir "$work/ca" >/dev/null
    "$warden" ca issue --dir "$work/ca" --spiffe spiffe://cluster.local/ns/default/sa/details --dns details --out "$work/details" >/dev/null
    "$warden" ca issue --dir "$work/ca" --spiffe spiffe://cluster.local/ns/default/sa/sleep --out "$work/sleep" >/dev/null
    mkdir -p "$work/server-policies" "$work/proxy-policies"
    cat > "$work/server-policies/bench.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-reads, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  rules:
  - to: [{operation: {methods: [GET, HEAD], paths: ["/bench/*"]}}]
EOF
    cp ../policies/details-require-jwt.yaml "$work/proxy-policies/"
}

start_nginx() {
    local work=$1 workers=$2 name=${3:-nginx}
    local dir=$work/$name
    mkdir -p "$dir"
    {
        cat <<EOF
worker_processes $workers;
pid $work/$name.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
    uwsgi_temp_path $dir; scgi_temp_path $dir;
EOF
        cat
        echo "}"
    } > "$dir/nginx.conf"
    nginx -c "$dir/nginx.conf" -g 'daemon on;'
}

start_nginx_paths() {
    local work=$1 workers=$2
    start_nginx "$work" "$workers" <<EOF
    ssl_certificate $work/details/cert-chain.pem;
    ssl_certificate_key $work/details/key.pem;
    ssl_client_certificate $work/details/root-cert.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    # The trivial upstream.
    server { listen 127.0.0.1:18080; location / { return 200 "ok\n"; } }
    # The upstream directly, over mTLS.
    server { listen 127.0.0.1:18443 ssl; location / { return 200 "ok\n"; } }
EOF
    start_nginx "$work" "$workers" nginx-enforcer <<EOF
    upstream app { server 127.0.0.1:18080; keepalive 128; }
    upstream warden { server 127.0.0.1:19181; keepalive 128; }
    ssl_certificate $work/details/cert-chain.pem;
    ssl_certificate_key $work/details/key.pem;
    ssl_client_certificate $work/details/root-cert.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    # nginx as the enforcement point: auth_request to Warden's HTTP ext_authz, then the upstream.
    server {
        listen 127.0.0.1:18444 ssl;
        location / {
            auth_request /_authz;
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /_authz {
            internal;
            proxy_pass http://warden/ext_authz\$request_uri;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Connection "";
            proxy_set_header Host details;
            proxy_http_version 1.1;
        }
    }
EOF
}
