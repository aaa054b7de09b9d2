#!/usr/bin/env python3
"""Create the IAM roles the role-chaining check needs in moto (boto3; idempotent).

    python moto_iam_setup.py MOTO_URL CHAINED_ROLE_NAME EXTERNAL_ID

moto's AssumeRole accepts any RoleArn while moto checks no signatures (the
role need not exist).  With signature checking on (POST /moto-api/reset-auth),
moto also authorises the call like IAM would, and then it needs:

- the caller's role, `Admin` (alice's SAML role in 123456789012), to exist,
  with a policy that allows sts:AssumeRole on the chained role (moto collects
  the caller role's policies; a role it does not know is a 500, NoSuchEntity);
- the chained role's trust policy, which moto evaluates when the role exists:
  here it trusts alice's assumed-role session (moto compares the principal
  ARN literally) and requires sts:ExternalId = EXTERNAL_ID.

Prints one JSON line: what exists now and what was created.
"""
import json
import sys

import boto3
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
CALLER_ROLE = "Admin"
SAML_PROVIDER = "arn:aws:iam::%s:saml-provider/IdP" % ACCOUNT
SESSION_ARN = "arn:aws:sts::%s:assumed-role/%s/alice@example.org" % (ACCOUNT, CALLER_ROLE)


def ensure_role(iam, name, trust, created):
    try:
        iam.get_role(RoleName=name)
    except ClientError as e:
        if e.response["Error"]["Code"] != "NoSuchEntity":
            raise
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        created.append(name)


def main():
    url, chained, external_id = sys.argv[1:4]
    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    created = []
    ensure_role(iam, CALLER_ROLE, {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Federated": SAML_PROVIDER},
                       "Action": "sts:AssumeRoleWithSAML"}]}, created)
    chained_arn = "arn:aws:iam::%s:role/%s" % (ACCOUNT, chained)
    iam.put_role_policy(RoleName=CALLER_ROLE, PolicyName="chain-to-" + chained,
                        PolicyDocument=json.dumps({
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                           "Resource": chained_arn}]}))
    ensure_role(iam, chained, {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                       "Principal": {"AWS": ["arn:aws:iam::%s:role/%s" % (ACCOUNT, CALLER_ROLE),
                                             SESSION_ARN]},
                       "Condition": {"StringEquals": {"sts:ExternalId": external_id}}}]},
        created)
    roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"])
    print(json.dumps({"created": created, "roles": roles, "chained_arn": chained_arn}))


if __name__ == "__main__":
    main()
