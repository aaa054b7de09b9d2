#!/usr/bin/env python3
"""moto_server with one fix for AssumeRoleWithSAML across accounts.

Run exactly like moto_server (same arguments):  python moto_sts.py -H 127.0.0.1 -p PORT

moto 5.2's STSBackend.assume_role_with_saml stores the new session in the
backend of the account that *served* the call (the default account), while
GetCallerIdentity made with the new keys is looked up in the backend of the
role's account.  For a role in another account (bob's ReadOnly in
210987654321) GetCallerIdentity then answers "arn:aws:sts::...:user/moto"
instead of the assumed-role ARN.  moto's own assume_role stores the session
in the role's account; this patch makes assume_role_with_saml do the same.
Nothing else is changed.
"""
import sys

from moto.sts import models


_orig = models.STSBackend.assume_role_with_saml


def _assume_role_with_saml(self, **kwargs):
    role = _orig(self, **kwargs)
    if role.account_id != self.account_id:
        backend = models.sts_backends[role.account_id][models.get_partition(self.region_name)]
        if role not in backend.assumed_roles:
            backend.assumed_roles.append(role)
    return role


models.STSBackend.assume_role_with_saml = _assume_role_with_saml

if __name__ == "__main__":
    from moto.server import main
    sys.exit(main())
