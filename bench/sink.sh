# Shared by bench/run.sh and scripts/chaos.sh: free loopback ports and the nginx sink.
# The caller sets WORK (a scratch folder); start_sink sets SINK_PORT and NGINX_PID. The sink's
# access log records per request: receive time, X-Fetch-Job-Id, X-Fetch-Attempt, X-Due-Ms, status.
# Routes: /ok 200; /flaky 500 while X-Fetch-Attempt <= 2, then 200; /fail always 500.
# SINK_LOG_BUFFER: nginx's access_log buffering (default "buffer=256k flush=1s"; "" = unbuffered).

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port" >&2; exit 1
}

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

start_sink() {
  SINK_PORT=$(free_port)
  mkdir -p "$WORK/nginx"
  local user_line=""
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  cat >"$WORK/nginx/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  log_format bench '\$msec \$http_x_fetch_job_id \$http_x_fetch_attempt \$http_x_due_ms \$status';
  access_log $WORK/nginx/access.log bench ${SINK_LOG_BUFFER-buffer=256k flush=1s};
  client_body_temp_path $WORK/nginx/body;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$SINK_PORT;
    location /ok { return 200 "ok"; }
    location /fail { return 500 "failing"; }
    location /flaky {
      if (\$http_x_fetch_attempt ~ "^[12]\$") { return 500 "flaky"; }
      return 200 "ok";
    }
  }
}
EOF
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -g 'daemon off; master_process off;' &
  NGINX_PID=$!
  wait_port "$SINK_PORT"
}
