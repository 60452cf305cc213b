"""Compose healthcheck: `python3 -m meshapp.healthcheck URL` exits 0 only on HTTP 200 within 3 s.

A hard 3 s deadline (not just a socket timeout) so a slow-dripping server can't stall the check.
"""
import os
import sys
import threading
import urllib.error
import urllib.request

DEADLINE = 3.0


def main():
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:%s/health" % os.environ.get("PORT", "8081")
    result = {"code": None}

    def probe():
        try:
            with urllib.request.urlopen(url, timeout=DEADLINE) as resp:
                resp.read()
                result["code"] = resp.status
        except urllib.error.HTTPError as e:
            result["code"] = e.code
        except Exception as e:  # connection refused, timeout, ...
            result["error"] = str(e)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(DEADLINE)
    code = result["code"]
    print("%s -> %s" % (url, code if code is not None else result.get("error", "timeout")))
    sys.exit(0 if code == 200 else 1)


if __name__ == "__main__":
    main()
