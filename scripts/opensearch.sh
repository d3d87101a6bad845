#!/usr/bin/env bash
# A real OpenSearch node for the tests (tests/opensearch/: OpenSearch 2.19 started in-process,
# every artifact from Maven Central through `mvn`).
#
#   scripts/opensearch.sh start [NAME] [setting=value ...]   start node NAME (default: main),
#       HTTP on 127.0.0.1 and a free port; waits for green health; prints the URL as the
#       last line. Settings are node settings, e.g. thread_pool.write.queue_size=1.
#   scripts/opensearch.sh stop [NAME]                        stop it (and remove its data).
#   scripts/opensearch.sh url [NAME]                         print the URL of a running node.
#
# State lives in target/opensearch/NAME/ (pid, url, node.log, data). OPENSEARCH_HEAP sets the
# heap (default 512m; the machine is shared).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
project="$root/tests/opensearch"
cmd=${1:-}
name=${2:-main}
case "$name" in *=*) name=main; shift 1 ;; *) [ $# -ge 2 ] && shift 2 || shift $# ;; esac
state="$root/target/opensearch/$name"

running() { [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }

stop() {
  if running; then
    local pid
    pid=$(cat "$state/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$state"
}

case "$cmd" in
  start)
    command -v mvn >/dev/null || { echo "mvn is not installed (apt-get install maven)" >&2; exit 1; }
    command -v curl >/dev/null || { echo "curl is not installed (apt-get install curl)" >&2; exit 1; }
    stop
    mkdir -p "$state"
    # Build once (and whenever the launcher changes); the classpath comes from ~/.m2.
    if [ ! -f "$project/target/classpath.txt" ] || [ ! -d "$project/target/classes" ] \
      || [ -n "$(find "$project/pom.xml" "$project/src" -newer "$project/target/classpath.txt" -type f 2>/dev/null)" ]; then
      echo "== building the OpenSearch test node (mvn, Maven Central)" >&2
      mvn -B -q -Dstyle.color=never -f "$project/pom.xml" package -DskipTests >&2
    fi
    cp="$project/target/classes:$(cat "$project/target/classpath.txt")"
    heap=${OPENSEARCH_HEAP:-512m}
    nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -Djava.awt.headless=true -Dlog4j2.disable.jmx=true -Dio.netty.allocator.numDirectArenas=0 \
      -cp "$cp" relay.opensearch.TestNode "$state/home" "$state/url" "$@" \
      >"$state/node.log" 2>&1 </dev/null &
    echo $! >"$state/pid"
    for _ in $(seq 1 600); do
      [ -f "$state/url" ] && break
      running || { echo "the OpenSearch node exited; its log:" >&2; tail -50 "$state/node.log" >&2; exit 1; }
      sleep 0.2
    done
    [ -f "$state/url" ] || { echo "the OpenSearch node did not start in 120 s; its log:" >&2; tail -50 "$state/node.log" >&2; stop; exit 1; }
    url=$(cat "$state/url")
    if ! curl -fsS "$url/_cluster/health?wait_for_status=green&timeout=60s" >/dev/null; then
      echo "the OpenSearch node at $url is not green; its log:" >&2
      tail -50 "$state/node.log" >&2
      stop
      exit 1
    fi
    echo "== OpenSearch $(curl -fsS "$url" | sed -n 's/.*"number" *: *"\([^"]*\)".*/\1/p') ($name) is green at $url" >&2
    echo "$url"
    ;;
  stop) stop ;;
  url) running && cat "$state/url" || { echo "no OpenSearch node $name is running" >&2; exit 1; } ;;
  *) echo "usage: $0 start|stop|url [NAME] [setting=value ...]" >&2; exit 2 ;;
esac
