"""Which S3 client library for the s3 driver: put and get one large object through each.

Starts moto_server (its own process, loopback) and, per client, writes an object of ``--mib``
MiB as a multipart upload of 10 MiB parts (as the driver streams an upload) and reads it back
as a stream, ``--runs`` times, each in a fresh process; prints the median MiB/s of each and
the CPU seconds the reading process spent per GiB got. The clients:

- ``botocore``: boto3's client, sync, parts sent one after another;
- ``aiobotocore``: the same protocol code on aiohttp, driven by one asyncio loop;
- ``obstore``: the Rust object_store crate, through its sync writer (parts in parallel) and
  streaming get;
- ``driver``: ``impl/storage/s3.py`` as chosen: botocore's parts one after another (one part
  in memory), obstore's streaming get.

    python bench/s3_clients.py --mib 256 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from servers import free_port

KEY, SECRET, REGION, BUCKET = "bench-key", "bench-secret", "us-east-1", "bench"
PART = 10 << 20
os.environ.update(
    AWS_EC2_METADATA_DISABLED="true", AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET
)


def start_moto(log: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """moto_server on a free loopback port; with ``log``, its request log (one line a request,
    which ``s3_requests`` counts) goes there."""
    import httpx

    port = free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=out,
        stderr=out,
    )
    if not isinstance(out, int):
        out.close()  # the child has its own copy
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url, timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("moto_server did not start")


def s3_requests(log: Path, bucket: str) -> int:
    """Requests moto_server has answered so far for ``bucket`` (path-style, as both registries
    address a custom endpoint), from its request log."""
    pattern = re.compile(rf'"[A-Z]+ /{re.escape(bucket)}[/? ]')
    return sum(1 for line in log.read_text(errors="replace").splitlines() if pattern.search(line))


def botocore_client(url: str) -> tuple[Callable[[str, bytes, int], None], Callable[[str], int]]:
    import boto3

    client = boto3.client(
        "s3", endpoint_url=url, region_name=REGION, aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )  # fmt: skip

    def put(name: str, part: bytes, parts: int) -> None:
        upload = client.create_multipart_upload(Bucket=BUCKET, Key=name)["UploadId"]
        done = []
        for number in range(1, parts + 1):
            answer = client.upload_part(
                Bucket=BUCKET, Key=name, UploadId=upload, PartNumber=number, Body=part
            )
            done.append({"PartNumber": number, "ETag": answer["ETag"]})
        client.complete_multipart_upload(
            Bucket=BUCKET, Key=name, UploadId=upload, MultipartUpload={"Parts": done}
        )

    def get(name: str) -> int:
        body, total = client.get_object(Bucket=BUCKET, Key=name)["Body"], 0
        while chunk := body.read(1 << 20):
            total += len(chunk)
        return total

    return put, get


def driver_client(url: str) -> tuple[Callable[[str, bytes, int], None], Callable[[str], int]]:
    from ocireg.storage.s3 import S3Driver

    driver = S3Driver(BUCKET, REGION, url, secure=False, accesskey=KEY, secretkey=SECRET)

    def put(name: str, part: bytes, parts: int) -> None:
        with driver.writer(name) as writer:
            for _ in range(parts):
                writer.write(part)
            writer.commit()

    def get(name: str) -> int:
        total = 0
        with driver.reader(name) as handle:
            while chunk := handle.read(1 << 20):
                total += len(chunk)
        return total

    return put, get


def aiobotocore_client(url: str) -> tuple[Callable[[str, bytes, int], None], Callable[[str], int]]:
    from aiobotocore.session import get_session

    loop = asyncio.new_event_loop()
    context = get_session().create_client(
        "s3", endpoint_url=url, region_name=REGION, aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )  # fmt: skip
    client = loop.run_until_complete(context.__aenter__())

    async def put_async(name: str, part: bytes, parts: int) -> None:
        upload = await client.create_multipart_upload(Bucket=BUCKET, Key=name)
        done = []
        for number in range(1, parts + 1):
            answer = await client.upload_part(
                Bucket=BUCKET, Key=name, UploadId=upload["UploadId"], PartNumber=number, Body=part
            )
            done.append({"PartNumber": number, "ETag": answer["ETag"]})
        await client.complete_multipart_upload(
            Bucket=BUCKET, Key=name, UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
        )

    async def get_async(name: str) -> int:
        answer = await client.get_object(Bucket=BUCKET, Key=name)
        total = 0
        async with answer["Body"] as body:
            while chunk := await body.read(1 << 20):
                total += len(chunk)
        return total

    return (
        lambda name, part, parts: loop.run_until_complete(put_async(name, part, parts)),
        lambda name: loop.run_until_complete(get_async(name)),
    )


def obstore_client(url: str) -> tuple[Callable[[str, bytes, int], None], Callable[[str], int]]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        BUCKET, endpoint=url, region=REGION, access_key_id=KEY, secret_access_key=SECRET,
        virtual_hosted_style_request=False, client_options={"allow_http": True},
    )  # fmt: skip

    def put(name: str, part: bytes, parts: int) -> None:
        with obstore.open_writer(store, name, buffer_size=PART) as writer:
            for _ in range(parts):
                writer.write(part)

    def get(name: str) -> int:
        return sum(len(chunk) for chunk in obstore.get(store, name).stream(min_chunk_size=1 << 20))

    return put, get


CLIENTS = {
    "botocore": botocore_client,
    "aiobotocore": aiobotocore_client,
    "obstore": obstore_client,
    "driver": driver_client,
}


def measure(name: str, url: str, mib: int, run: int) -> None:
    """One put and one get through one client, in this (fresh) process; prints MiB/s."""
    part, parts = os.urandom(PART), max(1, (mib << 20) // PART)
    size = parts * PART / (1 << 20)
    put, get = CLIENTS[name](url)
    started = time.perf_counter()
    put(f"{name}-{run}", part, parts)
    put_rate = size / (time.perf_counter() - started)
    started, cpu = time.perf_counter(), time.process_time()
    assert get(f"{name}-{run}") == parts * PART
    get_rate = size / (time.perf_counter() - started)
    print(put_rate, get_rate, (time.process_time() - cpu) / size * 1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # name url run: one measurement
    args = parser.parse_args()
    if args.one:
        name, url, run = args.one.split()
        measure(name, url, args.mib, int(run))
        return
    process, url = start_moto()
    try:
        import boto3

        boto3.client(
            "s3", endpoint_url=url, region_name=REGION, aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
        ).create_bucket(Bucket=BUCKET)  # fmt: skip
        rates: dict[str, list[tuple[float, ...]]] = {name: [] for name in CLIENTS}
        for run in range(args.runs):  # interleaved, so a noisy moment hits every client
            for name in CLIENTS:
                one = ["--mib", str(args.mib), "--one", f"{name} {url} {run}"]
                done = subprocess.run(
                    [sys.executable, __file__, *one], capture_output=True, text=True, check=True
                )
                rates[name].append(tuple(float(x) for x in done.stdout.split()[-3:]))
        print(f"object {args.mib} MiB, 10 MiB parts, {args.runs} interleaved runs, medians")
        for name, measured in rates.items():
            put, get, cpu = (statistics.median(rate[i] for rate in measured) for i in range(3))
            print(
                f"{name:12} put {put:6.1f} MiB/s   get {get:6.1f} MiB/s"
                f"   get CPU {cpu:4.2f} s/GiB (this process)"
            )
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
