"""boto3 against sluice's S3 gateway, as a training script or a notebook uses it.

Usage: boto3_client.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET PREFIX OUT_DIR SKIP

Lists PREFIX with a paginator (pages of 1,000), downloads every object into OUT_DIR (large
ones with download_file's parallel ranged parts) but those below PREFIX + SKIP, fetches one object through a presigned URL,
and tries a wrong secret, an unknown key and a skewed clock. Prints one JSON object with what
it saw; the C++ test compares the files and the codes.
"""
import datetime
import importlib
import json
import os
import sys
import urllib.request

import boto3
import botocore.auth
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint, access, secret):
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"},
                      signature_version="s3v4"))


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return "no error"


def main():
    endpoint, access, secret, bucket, prefix, out_dir, skip = sys.argv[1:8]
    s3 = client(endpoint, access, secret)
    result = {"pages": 0, "keys": [], "prefixes": []}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        result["pages"] += 1
        result["keys"] += [o["Key"] for o in page.get("Contents", [])]
    top = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
    result["prefixes"] = [p["Prefix"] for p in top.get("CommonPrefixes", [])]
    parts = TransferConfig(multipart_threshold=1 << 20, multipart_chunksize=1 << 20, max_concurrency=4)
    result["count"] = len(result["keys"])
    for key in result["keys"]:
        if key.startswith(prefix + skip):
            continue
        dest = os.path.join(out_dir, key[len(prefix):])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        s3.download_file(bucket, key, dest, Config=parts)
    first = result["keys"][0]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": first}, ExpiresIn=300)
    with urllib.request.urlopen(url) as response:
        result["presigned_bytes"] = len(response.read())
    result["presigned_key"] = first
    result["wrong_secret"] = error_code(lambda: client(endpoint, access, "wrong").get_object(Bucket=bucket, Key=first))
    result["unknown_key"] = error_code(lambda: client(endpoint, "NOSUCHKEY", secret).get_object(Bucket=bucket, Key=first))

    real_datetime, real_timedelta, real_timezone = datetime.datetime, datetime.timedelta, datetime.timezone

    class SkewedDatetime(real_datetime):  # botocore signs with utcnow(): an hour behind
        @classmethod
        def utcnow(cls):
            return real_datetime.utcnow() - real_timedelta(hours=1)

    class SkewedModule:
        datetime = SkewedDatetime
        timedelta = real_timedelta
        timezone = real_timezone

    # botocore signs in botocore.auth, or in botocore.crt.auth where awscrt is installed.
    signers = [botocore.auth]
    try:
        signers.append(importlib.import_module("botocore.crt.auth"))
    except ImportError:
        pass
    for module in signers:
        module.datetime = SkewedModule
    try:
        result["skewed_clock"] = error_code(lambda: s3.get_object(Bucket=bucket, Key=first))
    finally:
        for module in signers:
            module.datetime = datetime
    result["missing"] = error_code(lambda: s3.get_object(Bucket=bucket, Key=prefix + "no/such/key"))
    del result["keys"]
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
