"""Access denied by the store itself: a real S3 API server (moto) enforcing IAM policies, with a
read-only account and one with no rights on the bucket. Each refusal is one line naming the URL,
and a refused write leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.request import Request, urlopen

import pytest
from s3fs import S3FileSystem

from ocr_core.storage import open_root
from ocr_core.storage.errors import StorageError
from tests.s3_server import S3Server

READ_ONLY = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]


@pytest.fixture(scope="module")
def guarded_store():
    """A server of its own (the session's stays open), a bucket with one object, an admin, a
    reader and an account with no rights; then IAM is enforced on every request."""
    import boto3

    with S3Server() as server:
        admin = {"endpoint_url": server.endpoint, "aws_access_key_id": "testing",
                 "aws_secret_access_key": "testing", "region_name": "us-east-1"}
        bucket = server.bucket()
        boto3.client("s3", **admin).put_object(Bucket=bucket, Key="ocr/present.txt", Body=b"hi")
        iam = boto3.client("iam", **admin)
        keys = {}
        for user, actions in (("admin", ["s3:*"]), ("reader", READ_ONLY), ("stranger", None)):
            iam.create_user(UserName=user)
            if actions:
                iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps({
                    "Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Action": actions,
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {**server.environment(), "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                          "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        with urlopen(Request(f"{server.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                             headers={"Content-Type": "text/plain"}), timeout=10):
            pass  # from here on every request is checked against its account's policies
        yield f"s3://{bucket}/ocr", keys


@pytest.fixture
def as_account(guarded_store, monkeypatch):
    """Switch this process's AWS environment to one of the store's accounts."""
    url, keys = guarded_store

    def switch(user: str) -> str:
        for name, value in keys[user].items():
            monkeypatch.setenv(name, value)
        S3FileSystem.clear_instance_cache()  # a cached client keeps its old credentials
        return url

    yield switch
    S3FileSystem.clear_instance_cache()


def test_a_reader_reads_and_a_refused_write_is_one_line_and_leaves_nothing(as_account,
                                                                          guarded_store):
    import boto3

    url = as_account("reader")
    root = open_root(url)
    assert root.read_bytes("present.txt") == b"hi"  # the account works: what follows is policy
    with pytest.raises(StorageError, match=rf"^access denied to {url}.*: check the credentials' "
                       r"permissions for this bucket and prefix$"):
        root.write_bytes("model/weights.bin", b"x" * 1000)
    admin = guarded_store[1]["admin"]
    listed = boto3.client(
        "s3", endpoint_url=admin["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
        aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
    ).list_objects_v2(Bucket=url.removeprefix("s3://").split("/")[0])
    assert [item["Key"] for item in listed["Contents"]] == ["ocr/present.txt"]


def test_an_account_without_rights_is_refused_by_name(as_account):
    url = as_account("stranger")
    with pytest.raises(StorageError, match=rf"^access denied to {url}"):
        open_root(url).read_bytes("present.txt")
    with pytest.raises(StorageError, match=rf"^access denied to {url}"):
        open_root(url).files()


def test_the_cli_says_so_in_one_line(guarded_store):
    url, keys = guarded_store
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | keys["stranger"]
    result = subprocess.run([sys.executable, "-m", "flows.cli", "models", "list",
                             "--results-dir", url], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 7, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: access denied to {url}")
    assert "Traceback" not in result.stderr
