#!/usr/bin/env bash
# One-core interleaved A/B chain: each build against the one before it.
LG=/tmp/ab/80ec87e/loadgen
out=/tmp/abchain.jsonl; : > $out
run() { # label dir rate(empty=closed) round
rm -rf /tmp/dB; taskset -c 0 $2/switchboard serve --listen 127.0.0.1:0 --data-dir /tmp/dB --durability group --admin-listen 127.0.0.1:19191 --log warn --shards 1 > /tmp/sB.out 2>/tmp/sB.err & spid=$!
for _ in $(seq 100); do grep -q listening /tmp/sB.out 2>/dev/null && break; sleep 0.1; done; port=$(grep -o '[0-9]*$' /tmp/sB.out)
ra=(); [ -n "$3" ] && ra=(--rate $3 --busy-poll --pin-cores 1)
b=$(awk '{print $14+$15}' /proc/$spid/stat); timeout 120 taskset -c 1 $LG --server 127.0.0.1:$port --threads 1 messaging --pairs 64 --window 16 --duration-secs 5 "${ra[@]}" > /tmp/lg.json 2>/dev/null; a=$(awk '{print $14+$15}' /proc/$spid/stat)
m=$(curl -s 127.0.0.1:19191/metrics); st=$(echo "$m" | awk '/^switchboard_messages_stored_total/ {print $2}'); el=$(echo "$m" | awk '/^switchboard_messages_elided_total/ {print $2}')
kill $spid; wait $spid 2>/dev/null
python3 - "$1" "${3:-closed}" "$4" $a $b "${st:-0}" "${el:-0}" <<'PY' | tee -a /tmp/abchain.jsonl
import json,sys
label,load,rnd,a,b,st,el=sys.argv[1:]
r=json.load(open('/tmp/lg.json'))['result']
print(json.dumps({"build":label,"load":load,"round":int(rnd),"msgs_per_sec":round(r['sent_per_sec']),"cpu_us_per_msg":round((int(a)-int(b))/100*1e6/r['sent_ok'],2),"p50_us":r['from_write_latency_us_p50'],"p99_us":r['from_write_latency_us_p99'],"p999_us":r['from_write_latency_us_p999'],"stored":int(st),"elided":int(el or 0)}))
PY
}
pair() { # A B
for round in 1 2; do
  if (( round % 2 )); then order="$1 $2"; else order="$2 $1"; fi
  for v in $order; do run $v /tmp/ab/$v "" $round; run $v /tmp/ab/$v 22000 $round; done
done
}
pair 80ec87e f099670
pair f099670 b6b5015
pair b6b5015 1a5ccd2
pair 1a5ccd2 b0c4aa5
pair b0c4aa5 hold
