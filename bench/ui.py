"""Web UI page times on a large registry (issue 17): each page's server time, as a client on
loopback sees it, and the home page's first paint in headless Chromium.

Writes ``--repos`` x ``--tags`` images (as bench/meta.py does), starts ``ocireg serve`` on them
with the search and ui extensions, waits until the meta DB is built, then fetches each page
``--runs`` times, one at a time. Targets, 10,000 repositories: every page p50 under 50 ms, the
home page's first contentful paint under 1 s. Besides the wall time a client sees, each page's
server CPU time (the worker and its search process, from /proc) is given: on a shared machine
it says what the page costs when the wall time says mostly how busy the neighbours are. With
``--cve`` (CVE scanning on, no OSV data) the image's vulnerabilities tab is measured too.

    BENCH_TMPDIR=/dev/shm python bench/ui.py --repos 10000 --tags 10
    python bench/ui.py --root /dev/shm/ui10k/root     # a root bench/ui_profile.py filled
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from meta import populate
from procstat import cpu_seconds
from search import search_server

PAGES = {
    "home": "/home",
    "explore (all, by relevance)": "/home/explore",
    "explore (by update time)": "/home/explore?sort=updated",
    "explore (by update time, page 50)": "/home/explore?sort=updated&page=50",
    "explore (by downloads)": "/home/explore?sort=downloads",
    "explore (by stars)": "/home/explore?sort=stars",
    "explore (by name)": "/home/explore?sort=name",
    "explore (by name, descending)": "/home/explore?sort=name-desc",
    "explore app12 (search)": "/home/explore?q=app12",
    "explore linux filter": "/home/explore?os=linux",
    "explore arm64 filter (none)": "/home/explore?arch=arm64",
    "explore signed filter (none)": "/home/explore?signed=1",
    "suggest app12": "/home/suggest?q=app12",
    "repository": "/home/repo/{repo}",
    "image": "/home/image/{repo}/tag/v1",
    "base images and dependents": "/home/image/{repo}/tag/v1?tab=related",
    "operations": "/home/operations",
    "login": "/home/login",
}
CVE_PAGES = {"vulnerabilities": "/home/image/{repo}/tag/v1?tab=vulnerabilities"}
USER_PAGES = {"API keys": "/home/apikeys"}
USER, PASSWORD = "bench", "bench-password"
CHROMIUM = "/usr/lib/chromium/chromium"
# search alone, for comparison: the home page's "recently updated" list as GraphQL over HTTP
RECENT_QUERY = (
    '{ GlobalSearch(query: "", requestedPage: {limit: 6, sortBy: UPDATE_TIME}) { Repos { Name } } }'
)


def first_paint(url: str) -> float | None:
    """The home page's first contentful paint in a fresh headless Chromium page, in ms."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{url}/home")
            paint = page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
            )
            return None if paint is None else float(paint)
        finally:
            browser.close()


def authenticating(directory: Path) -> dict[str, object]:
    """``http`` settings for ``--login``: one htpasswd user, API keys on."""
    import bcrypt

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    (directory / "htpasswd").write_text(f"{USER}:{hashed}\n")
    return {"auth": {"htpasswd": {"path": str(directory / "htpasswd")}, "apikey": True}}


def log_in(client: httpx.Client) -> None:
    """Through the login form, as a person: its CSRF token, then the session cookie."""
    form = client.get("/home/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None, "no CSRF token on the login page"
    fields = {"csrf": token[1], "next": "/home", "username": USER, "password": PASSWORD}
    response = client.post("/home/login", data=fields)
    assert response.status_code == 303, response.status_code


def warm_up(client: httpx.Client) -> None:
    """Ask for the home page until it answers: search's first query reads the facts of every
    repository, which may take longer than its queryTimeout on a busy machine."""
    started = time.perf_counter()
    for _ in range(20):
        response = client.get("/home")
        if response.status_code == 200:
            break
        print(f"home answered {response.status_code}, again", flush=True)
    elapsed = (time.perf_counter() - started) * 1000
    print(f"first page (search's facts of every repository): {elapsed:.0f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait after start")
    parser.add_argument(
        "--query-timeout",
        default="10s",
        help="extensions.search.limits.queryTimeout: on a busy machine search's first query "
        "(every repository's facts) can take longer than the default, and a search process "
        "killed at its timeout starts the next query cold again",
    )
    parser.add_argument("--cve", action="store_true", help="CVE scanning on: its tab too")
    parser.add_argument(
        "--only", default="", help="only the pages whose name holds one of these (commas)"
    )
    parser.add_argument(
        "--login",
        action="store_true",
        help="htpasswd and API keys on; every page as a user logged in by the login form "
        "(the home page with its starred and bookmarked lists), and the API keys page",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="serve this storage root, filled before (as bench/ui_profile.py fills one) and "
        "kept, instead of writing a new one",
    )
    args = parser.parse_args()
    search: dict[str, object] = {"limits": {"queryTimeout": args.query_timeout}}
    pages = dict(PAGES)
    if args.cve:
        search["cve"] = {}
        pages.update(CVE_PAGES)
    if args.login:
        pages.update(USER_PAGES)
    with search_server(
        "ocireg-ui-",
        lambda root: populate(root, args.repos, args.tags),
        search,
        {"ui": {}},
        args.root,
        authenticating if args.login else None,
    ) as (url, server, sync):
        print(
            f"{args.repos} repositories x {args.tags} tags; meta DB built in {sync:.1f} s",
            flush=True,
        )
        time.sleep(args.settle)
        with httpx.Client(base_url=url, timeout=120) as client:
            if args.login:
                log_in(client)
            warm_up(client)
            middle = args.repos // 2
            repo = f"team{middle % 100}/app{middle}"  # as meta.populate names them
            query = RECENT_QUERY
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                client.post("/v2/_zot/ext/search", json={"query": query})
                times.append((time.perf_counter() - started) * 1000)
            print(f"(GraphQL alone, home's recent list: p50 {statistics.median(times):.1f} ms)")
            for name, template in pages.items():
                if not any(part in name for part in args.only.split(",")):
                    continue
                path = template.format(repo=repo)
                times = []
                # in clock ticks (10 ms): summed over the runs; the worker's own, and the tree's
                # (the worker and its search process)
                own, used = cpu_seconds(server.pid, alone=True), cpu_seconds(server.pid)
                for _ in range(args.runs):
                    started = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
                cpu = (cpu_seconds(server.pid) - used) * 1000 / args.runs
                worker = (cpu_seconds(server.pid, alone=True) - own) * 1000 / args.runs
                times.sort()
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                print(
                    f"{name}: p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms, "
                    f"server CPU {cpu:.1f} ms a page (mean; the worker's {worker:.1f} ms, "
                    f"search's {cpu - worker:.1f} ms)",
                    flush=True,
                )
        paint = None if args.login else first_paint(url)  # logged in: a guest sees the login
        print(f"home first contentful paint: {'n/a' if paint is None else f'{paint:.0f} ms'}")


if __name__ == "__main__":
    main()
