"""Scripting the simulated Venice over its control endpoint (SIM_URL): what it answers next.
Replies are consumed in order; with none left it echoes the last user message."""

import json
import os
import urllib.request

MODEL = "e2ee-qwen3-6-35b-a3b"


def script(*replies):
    """Each reply is the answer's text, or a (text, reasoning) pair."""
    items = [{"content": r} if isinstance(r, str) else {"content": r[0], "reasoning": r[1]}
             for r in replies]
    body = json.dumps({"replies": items}).encode()
    req = urllib.request.Request(os.environ["SIM_URL"] + "/_sim/script", data=body,
                                 headers={"content-type": "application/json"})
    urllib.request.urlopen(req).read()


def qwen_call(name, **args):
    """A call in Qwen3.5's own syntax (the demo model's family)."""
    params = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in args.items())
    return f"<tool_call>\n<function={name}>\n{params}</function>\n</tool_call>"
