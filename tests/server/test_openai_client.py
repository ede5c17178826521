"""`ignis serve api_server` driven by real clients: the official `openai` package and
prometheus_client's text parser, plus plain HTTP (urllib) for the endpoints OpenAI's client
does not know. The server runs stories260K on the CPU on a free loopback port and is
always stopped; the last test stops it with SIGTERM mid-stream.

Run by ctest (tests/server.cmake) with the venv of .ci/test; env: IGNIS_BIN, IGNIS_ASSETS
or IGNIS_ASSETS_DEFAULT.
"""
import concurrent.futures as cf
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import openai
from prometheus_client.parser import text_string_to_metric_families

ASSETS = os.environ.get("IGNIS_ASSETS") or os.environ.get("IGNIS_ASSETS_DEFAULT") or "../shared/assets"
MODEL = os.path.join(ASSETS, "models/stories260K/hf")
GOLDEN = os.path.join(ASSETS, "models/stories260K/greedy_t0_steps256.txt")
NAME = "stories"


class Server:
    def __init__(self):
        args = [os.environ["IGNIS_BIN"], "serve", "api_server", MODEL, "--server-name", "127.0.0.1",
                "--server-port", "0", "--backend", "cpu", "--threads", "2", "--model-name", NAME, "--session-len", "4096",
                "--no-access-log"]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.port = None
        deadline = time.time() + 60
        for line in self.proc.stderr:
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
            if time.time() > deadline:
                break
        if not self.port:
            raise RuntimeError("no port in the startup log: " + "".join(self.log))
        # keep draining stderr so the server never blocks on a full pipe
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()
        self.base = f"http://127.0.0.1:{self.port}"
        while time.time() < deadline:
            if self.get("/health")[0] == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("/health never answered 200: " + "".join(self.log))

    def get(self, path):
        return self.request("GET", path)

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return None, ""

    def client(self):
        return openai.OpenAI(base_url=self.base + "/v1", api_key="none", max_retries=0, timeout=120)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def stream_completion(client, **kw):
    text, finish, usage = "", None, None
    for ch in client.completions.create(model=NAME, stream=True, stream_options={"include_usage": True}, **kw):
        if ch.choices:
            text += ch.choices[0].text or ""
            finish = ch.choices[0].finish_reason or finish
        if ch.usage:
            usage = ch.usage
    return text, finish, usage


def test_models_lists_the_served_name(s):
    ids = [m.id for m in s.client().models.list().data]
    check(ids == [NAME], f"models: {ids}")


def test_completion_streamed_equals_non_streamed(s):
    c = s.client()
    kw = dict(prompt="Once upon a time", max_tokens=60, temperature=0.8, top_p=0.95, seed=11)
    plain = c.completions.create(model=NAME, **kw)
    text, finish, usage = stream_completion(c, **kw)
    check(plain.choices[0].text == text, f"streamed {text!r} != plain {plain.choices[0].text!r}")
    check(plain.choices[0].finish_reason == finish == "length", f"finish {finish}")
    check(usage.completion_tokens == plain.usage.completion_tokens == 60, f"usage {usage}")
    check(plain.usage.prompt_tokens == 5 and plain.usage.total_tokens == 65, f"usage {plain.usage}")


def test_chat_streamed_equals_non_streamed(s):
    c = s.client()
    msgs = [{"role": "system", "content": "Tell a story."}, {"role": "user", "content": "Once upon a time"}]
    plain = c.chat.completions.create(model=NAME, messages=msgs, max_tokens=40, temperature=0.7, seed=5)
    text, roles, finish = "", [], None
    for ch in c.chat.completions.create(model=NAME, messages=msgs, max_tokens=40, temperature=0.7, seed=5,
                                        stream=True):
        d = ch.choices[0].delta
        if d.role:
            roles.append(d.role)
        text += d.content or ""
        finish = ch.choices[0].finish_reason or finish
    check(roles == ["assistant"], f"roles {roles}")
    check(plain.choices[0].message.content == text, f"chat streamed {text!r} != {plain.choices[0].message.content!r}")
    check(plain.choices[0].message.role == "assistant" and finish == plain.choices[0].finish_reason, "chat finish")


def test_greedy_completion_reproduces_golden(s):
    gold = open(GOLDEN).read().lstrip()
    r = s.client().completions.create(model=NAME, prompt=[1], max_tokens=64, temperature=0)
    got = r.choices[0].text.lstrip()
    check(len(got) > 100 and gold.startswith(got), f"greedy {got!r} is not llama2.c's {gold[:len(got)]!r}")


def test_same_seed_same_text_alone_and_among_32(s):
    kw = dict(prompt="The little dog", max_tokens=48, temperature=1.0, extra_body={"top_k": 40})
    alone = s.client().completions.create(model=NAME, seed=1234, **kw).choices[0].text

    def one(i):
        c = s.client()
        if i % 2 == 0:
            return "same", c.completions.create(model=NAME, seed=1234, **kw).choices[0].text
        return "other", c.completions.create(model=NAME, seed=i, prompt=f"Lily {i}", max_tokens=40 + i,
                                             temperature=0.9).choices[0].text

    with cf.ThreadPoolExecutor(32) as ex:
        out = list(ex.map(one, range(32)))
    same = [t for k, t in out if k == "same"]
    check(len(same) == 16 and all(t == alone for t in same),
          f"seed 1234 among 32: {sum(t == alone for t in same)}/16 equal the lone run {alone!r}")


def test_128_concurrent_streaming_clients(s):
    prompts = ["Once upon a time", "Tom had a ball", "The sun was", "A big red"]
    want = {p: s.client().completions.create(model=NAME, prompt=p, max_tokens=32, temperature=0).choices[0].text
            for p in prompts}
    start = threading.Barrier(128)

    def one(i):
        c = s.client()
        start.wait()
        p = prompts[i % 4]
        text, finish, usage = stream_completion(c, prompt=p, max_tokens=32, temperature=0)
        return p, text, finish, usage.completion_tokens if usage else None

    with cf.ThreadPoolExecutor(128) as ex:
        out = list(ex.map(one, range(128)))
    bad = [(p, t, f, n) for p, t, f, n in out if t != want[p] or f != "length" or n != 32]
    check(not bad, f"{len(bad)}/128 streams wrong, e.g. {bad[:2]}")


def test_plain_http_endpoints(s):
    st, body = s.request("POST", "/v1/encode", {"input": ["Once upon a time", "Lily"], "add_bos": False})
    j = json.loads(body)
    check(st == 200 and j["input_ids"][0] == [403, 407, 261, 378] and len(j["length"]) == 2, f"encode {body}")
    st, body = s.request("POST", "/v1/completions", {"model": NAME, "prompt": "Once", "max_tokens": 5})
    j = json.loads(body)
    check(st == 200 and j["object"] == "text_completion" and j["id"] and j["created"] > 0, f"completion {body}")
    check(j["usage"]["prompt_tokens_details"]["cached_tokens"] == 0, f"cached tokens {body}")
    st, body = s.request("POST", "/v1/chat/interactive",
                         {"prompt": "Once upon a time", "session_id": 3, "interactive_mode": True,
                          "request_output_len": 8, "stream": True})
    lines = [json.loads(x) for x in body.splitlines() if x]
    check(st == 200 and lines[-1]["finish_reason"] == "length" and lines[-1]["tokens"] == 8, f"interactive {body}")
    st, body = s.request("POST", "/v1/chat/interactive", {"prompt": " Then", "session_id": 3,
                                                           "interactive_mode": False, "request_output_len": 4})
    j = json.loads(body)
    check(st == 200 and j["history_tokens"] == 13 and j["tokens"] == 4, f"interactive turn 2 {body}")
    st, body = s.request("POST", "/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]})
    check(st == 400 and json.loads(body)["error"]["param"] == "messages", f"bad role {st} {body}")
    try:
        s.client().completions.create(model="no-such-model", prompt="x", max_tokens=2)
        check(False, "unknown model accepted")
    except openai.NotFoundError as e:
        check(e.status_code == 404, f"unknown model: {e}")
    try:
        s.client().completions.create(model=NAME, prompt="x", max_tokens=2, temperature=3)
        check(False, "temperature 3 accepted")
    except openai.BadRequestError as e:
        check(e.status_code == 400, f"temperature 3: {e}")


def test_metrics_parse_with_prometheus_client(s):
    st, body = s.get("/metrics")
    check(st == 200, f"/metrics {st}")
    fams = {f.name: f for f in text_string_to_metric_families(body)}
    for name, kind in [("ignis:num_requests_running", "gauge"), ("ignis:num_requests_waiting", "gauge"),
                       ("ignis:kv_cache_usage_perc", "gauge"), ("ignis:kv_cache_blocks_used", "gauge"),
                       ("ignis:kv_cache_blocks_free", "gauge"), ("ignis:kv_cache_blocks_cached", "gauge"),
                       ("ignis:prompt_tokens", "counter"), ("ignis:generation_tokens", "counter"),
                       ("ignis:num_preemptions", "counter"), ("ignis:prefix_cache_queries", "counter"),
                       ("ignis:prefix_cache_hits", "counter"), ("ignis:time_to_first_token_seconds", "histogram"),
                       ("ignis:inter_token_latency_seconds", "histogram"),
                       ("ignis:e2e_request_latency_seconds", "histogram"),
                       ("ignis:request_queue_time_seconds", "histogram")]:
        check(name in fams and fams[name].type == kind, f"{name} ({kind}) missing: {sorted(fams)}")
    gen = [x.value for x in fams["ignis:generation_tokens"].samples if x.name.endswith("_total")]
    check(gen and gen[0] > 1000, f"generation tokens {gen}")
    ttft = {x.labels.get("le"): x.value for x in fams["ignis:time_to_first_token_seconds"].samples
            if x.name.endswith("_bucket")}
    check(ttft["+Inf"] > 100, f"ttft count {ttft.get('+Inf')}")
    used = [x.value for x in fams["ignis:kv_cache_blocks_used"].samples]
    check(used == [0.0], f"KV blocks still used while idle: {used}")


def test_sigterm_ends_streams_with_finish_reason_and_exits_0(s):
    got = {}

    def reader():
        req = urllib.request.Request(s.base + "/v1/completions", method="POST",
                                     data=json.dumps({"prompt": "Once", "max_tokens": 3000, "ignore_eos": True,
                                                      "stream": True}).encode(),
                                     headers={"Content-Type": "application/json"})
        chunks = []
        with urllib.request.urlopen(req, timeout=60) as r:
            for line in r:
                line = line.decode().strip()
                if line:
                    chunks.append(line)
                    got["first"] = True
        got["chunks"] = chunks

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(500):
        if got.get("first"):
            break
        time.sleep(0.01)
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(timeout=15)
    took = time.time() - t0
    t.join(30)
    check(rc == 0, f"exit status {rc}: {''.join(s.log[-5:])}")
    check(took < 10, f"took {took:.1f} s to stop")
    chunks = got.get("chunks", [])
    check(chunks and chunks[-1] == "data: [DONE]", f"stream did not end with [DONE]: {chunks[-3:]}")
    finishes = [json.loads(c[6:])["choices"][0]["finish_reason"] for c in chunks[:-1]
                if json.loads(c[6:])["choices"]]
    check(finishes[-1] == "abort", f"last finish_reason {finishes[-1]} (expected abort: cut short by SIGTERM)")


def main():
    if not os.path.isdir(MODEL):
        print(f"skipping: {MODEL} not found")
        return 1 if os.environ.get("IGNIS_REQUIRE_ASSETS") == "1" else 77
    tests = [v for k, v in globals().items() if k.startswith("test_")]
    s = Server()
    failed = 0
    try:
        for t in tests:
            t0 = time.time()
            try:
                t(s)
                print(f"[ OK ] {t.__name__} ({time.time() - t0:.1f} s)", flush=True)
            except Exception as e:  # report every test, then fail
                failed += 1
                print(f"[FAIL] {t.__name__}: {type(e).__name__}: {e}", flush=True)
    finally:
        s.stop()
    # under ASan/UBSan the server reports memory errors, leaks and undefined behaviour here
    bad = [line for line in s.log if "Sanitizer" in line or "runtime error:" in line]
    if bad:
        failed += 1
        print("[FAIL] the server's log has sanitizer reports:\n" + "".join(s.log[-60:]), flush=True)
    print(f"{len(tests) - failed}/{len(tests)} passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
