"""Child process: a proxyless gRPC client using gRPC C-core (Debian's python3-grpcio).

Run as `/usr/bin/python3 test/helpers/xds_client.py <target>` with GRPC_XDS_BOOTSTRAP set.
Same JSON-lines protocol as grpc-js-xds-client.ts (see xds-clients.ts):
  stdout at start:  {"ready": true, "impl": "grpc-core", "version": ..., "target": ...}
  stdin:  {"id": 1, "calls": 300, "metadata": {"end-user": "jason"}, "deadlineMs": 1000, "concurrency": 8}
  stdout: {"id": 1, "counts": {"reviews-v1": 300}, "errors": 0, "errorCodes": {}, "errorSamples": []}
  stdin:  {"id": 2, "op": "state"}   ->  {"id": 2, "state": "READY"}
One channel is opened at start and kept until stdin closes; then the process exits.
Raw bytes in and out: no generated code, no .proto file.
"""
import json
import os
import sys
import threading
import time

import grpc

WHO_METHOD = "/meshd.test.Echo/Who"
MAX_CALLS = 10000
MAX_SAMPLES = 5

_state_lock = threading.Lock()
_state = {"value": "IDLE"}


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _on_state(conn):
    with _state_lock:
        # grpc.ChannelConnectivity.READY -> "READY"
        _state["value"] = conn.name if hasattr(conn, "name") else str(conn)


def clamp(v, lo, hi):
    return max(lo, min(hi, v))


def run_calls(who, cmd):
    total = clamp(int(cmd.get("calls", 1)), 0, MAX_CALLS)
    deadline_s = clamp(float(cmd.get("deadlineMs", 1000)), 1.0, 30000.0) / 1000.0
    concurrency = clamp(int(cmd.get("concurrency", 8)), 1, 64)
    wait_for_ready = bool(cmd.get("waitForReady", False))
    stagger_s = clamp(float(cmd.get("staggerMs", 0)), 0.0, 1000.0) / 1000.0
    md = [(str(k).lower(), str(v)) for k, v in (cmd.get("metadata") or {}).items()]
    counts = {}
    error_codes = {}
    samples = []
    errors = 0
    done = 0
    while done < total:
        batch = min(concurrency, total - done)
        futures = []
        for i in range(batch):
            if i > 0 and stagger_s > 0:
                # successive calls of a batch start stagger_s apart
                time.sleep(stagger_s)
            futures.append(who.future(b"", timeout=deadline_s, metadata=md, wait_for_ready=wait_for_ready))
        for f in futures:
            try:
                name = f.result().decode("utf-8")
                counts[name] = counts.get(name, 0) + 1
            except grpc.RpcError as e:
                errors += 1
                code = e.code()
                num = str(code.value[0]) if code is not None else "-1"
                error_codes[num] = error_codes.get(num, 0) + 1
                msg = "%s %s" % (num, e.details())
                if len(samples) < MAX_SAMPLES and msg not in samples:
                    samples.append(msg)
        done += batch
    return {
        "id": cmd.get("id"),
        "counts": counts,
        "errors": errors,
        "errorCodes": error_codes,
        "errorSamples": samples,
    }


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: xds_client.py <xds:///target>\n")
        sys.exit(2)
    target = sys.argv[1]
    channel = grpc.insecure_channel(target)
    channel.subscribe(_on_state, try_to_connect=False)
    # None serializers: bytes are sent and returned unchanged.
    who = channel.unary_unary(WHO_METHOD, request_serializer=None, response_deserializer=None)
    send({"ready": True, "impl": "grpc-core", "version": grpc.__version__, "target": target})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
        except ValueError as e:
            send({"error": "bad command: %s" % e})
            continue
        try:
            if cmd.get("op") == "state":
                with _state_lock:
                    send({"id": cmd.get("id"), "state": _state["value"]})
            else:
                send(run_calls(who, cmd))
        except Exception as e:  # report, keep serving
            send({"id": cmd.get("id"), "error": "%s: %s" % (type(e).__name__, e)})
    channel.close()
    sys.stdout.flush()
    # gRPC's background threads can delay interpreter shutdown; the work is done.
    os._exit(0)


if __name__ == "__main__":
    main()
