#!/usr/bin/env bash
# interop/idp.sh - run real SAML ECP IdPs (SimpleSAMLphp 1.19, Debian package)
# on loopback for the aws_login.py interop checks.
#
# Adapted from the team's recipe simplesamlphp-ecp-idp/setup-idp.sh and
# stop-idp.sh (shared reference material; this project never reads it at run
# time).  Differences from the recipe:
#   * one Apache serves TWO IdP instances, each with its own SimpleSAMLphp
#     config dir (selected per virtual host with SetEnv SIMPLESAMLPHP_CONFIG_DIR)
#     and its own PHP session store:
#       A: signs only the Assertion, ForceAuthn on  (IDP_SIGN_RESPONSE=0, IDP_FORCE_AUTHN=1)
#       B: signs Response + Assertion, ForceAuthn off (IDP_SIGN_RESPONSE=1, IDP_FORCE_AUTHN=0)
#     Both use the same SAML signing key and the same TLS CA / server cert.
#   * extra users dave:dave-pass (one role, SessionDuration 900) and
#     erin:erin-pass (one role, role/ShortLived, SessionDuration $IDP_SHORT_SESSION,
#     default 20 s; see sts_proxy.py --short-lived-role).
#   * no apt here: interop/run installs packages.
#
# Usage: idp.sh start|stop     (environment below; all paths under $IDP_STATE)
#   IDP_STATE                 directory for config, keys, logs, pid (required)
#   IDP_A_HTTP_PORT=18080 IDP_A_HTTPS_PORT=18443
#   IDP_B_HTTP_PORT=18081 IDP_B_HTTPS_PORT=18444
#   IDP_A_SIGN_RESPONSE=0 IDP_A_FORCE_AUTHN=1    (the recipe's IDP_SIGN_RESPONSE /
#   IDP_B_SIGN_RESPONSE=1 IDP_B_FORCE_AUTHN=0     IDP_FORCE_AUTHN, per instance;
#                                                 checks.py relies on these defaults)
#   IDP_SHORT_SESSION=20      erin's SessionDuration in seconds
set -euo pipefail

: "${IDP_STATE:?IDP_STATE must be set}"
IDP_A_HTTP_PORT=${IDP_A_HTTP_PORT:-18080}
IDP_A_HTTPS_PORT=${IDP_A_HTTPS_PORT:-18443}
IDP_B_HTTP_PORT=${IDP_B_HTTP_PORT:-18081}
IDP_B_HTTPS_PORT=${IDP_B_HTTPS_PORT:-18444}
IDP_A_SIGN_RESPONSE=${IDP_A_SIGN_RESPONSE:-0}
IDP_A_FORCE_AUTHN=${IDP_A_FORCE_AUTHN:-1}
IDP_B_SIGN_RESPONSE=${IDP_B_SIGN_RESPONSE:-1}
IDP_B_FORCE_AUTHN=${IDP_B_FORCE_AUTHN:-0}
IDP_ENTITY_ID=${IDP_ENTITY_ID:-urn:idp-lab:simplesamlphp}
IDP_SHORT_SESSION=${IDP_SHORT_SESSION:-20}
case "$IDP_SHORT_SESSION" in ''|*[!0-9]*) printf '[idp] ERROR: IDP_SHORT_SESSION must be a number of seconds\n' >&2; exit 1;; esac
BIND=127.0.0.1
SSP=/usr/share/simplesamlphp
CERT=$IDP_STATE/cert
RUN=$IDP_STATE/run
LOG=$IDP_STATE/log
RUN_USER=www-data

log() { printf '[idp] %s\n' "$*" >&2; }
die() { printf '[idp] ERROR: %s\n' "$*" >&2; exit 1; }

wait_gone() { for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

stop_idp() {
  # Apache: the pid file holds the parent; TERM makes it stop its children too.
  if [ -s "$RUN/apache.pid" ]; then
    pid=$(cat "$RUN/apache.pid")
    if kill -0 "$pid" 2>/dev/null && grep -q apache2 "/proc/$pid/comm" 2>/dev/null; then
      kill -TERM "$pid"
      wait_gone "$pid" || { log "apache $pid did not stop on TERM, sending KILL"; kill -KILL "$pid" 2>/dev/null || true; }
      log "stopped apache (pid $pid)"
    fi
    rm -f "$RUN/apache.pid"
  fi
}

port_free() { ! (exec 3<>"/dev/tcp/$BIND/$1") 2>/dev/null; }

gen_keys() {
  mkdir -p "$CERT"
  # SAML signing key/cert (self-signed, as usual for SAML metadata).
  if [ ! -s "$CERT/idp-signing.key" ] || [ ! -s "$CERT/idp-signing.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 \
      -keyout "$CERT/idp-signing.key" -out "$CERT/idp-signing.crt" \
      -subj "/CN=aws-login interop SAML signing" 2>/dev/null
  fi
  # TLS: a private test CA plus a server cert for 127.0.0.1/localhost.
  if [ ! -s "$CERT/tls-ca.crt" ] || [ ! -s "$CERT/tls-server.crt" ] || [ ! -s "$CERT/tls-server.key" ]; then
    openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 30 \
      -keyout "$CERT/tls-ca.key" -out "$CERT/tls-ca.crt" -subj "/CN=aws-login interop test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey rsa:2048 -sha256 -nodes \
      -keyout "$CERT/tls-server.key" -out "$CERT/tls-server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
    cat > "$CERT/tls-server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EOF
    openssl x509 -req -sha256 -days 30 -in "$CERT/tls-server.csr" \
      -CA "$CERT/tls-ca.crt" -CAkey "$CERT/tls-ca.key" -CAcreateserial \
      -extfile "$CERT/tls-server.ext" -out "$CERT/tls-server.crt" 2>/dev/null
    rm -f "$CERT/tls-server.csr"
  fi
  chown root:"$RUN_USER" "$CERT"/*.key
  chmod 640 "$CERT"/*.key
  chmod 644 "$CERT"/*.crt
  chmod 755 "$CERT"
}

# write_instance NAME SIGN_RESPONSE(0|1) FORCE_AUTHN(0|1)
write_instance() {
  local name=$1 sign=$2 force=$3
  local base=$IDP_STATE/idp-$name
  local conf=$base/config meta=$base/metadata ilog=$base/log
  local writable="$ilog $base/data $base/tmp $base/sessions"
  local sign_php force_php salt adminpass
  [ "$sign" = 1 ] && sign_php=true || sign_php=false
  [ "$force" = 1 ] && force_php=true || force_php=false
  # shellcheck disable=SC2086
  mkdir -p "$conf" "$meta" $writable
  chmod 755 "$base"
  # shellcheck disable=SC2086
  chown -R "$RUN_USER:$RUN_USER" $writable
  salt=$(openssl rand -hex 24)
  adminpass=$(openssl rand -hex 12)

  cat > "$conf/config.php" <<EOF
<?php
// Generated by interop/idp.sh (instance $name) - SimpleSAMLphp 1.19 configuration.
\$config = [
    'baseurlpath' => '/simplesaml/',
    'certdir' => '$CERT/',
    'loggingdir' => '$ilog/',
    'datadir' => '$base/data/',
    'tempdir' => '$base/tmp',
    'metadatadir' => '$meta/',
    'attributenamemapdir' => '/etc/simplesamlphp/attributemap/',
    'technicalcontact_name' => 'aws-login-interop',
    'technicalcontact_email' => 'interop@example.org',
    'timezone' => 'UTC',
    'secretsalt' => '$salt',
    'auth.adminpassword' => '$adminpass',
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'trusted.url.domains' => ['127.0.0.1', 'localhost'],
    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'enable.adfs-idp' => false,
    'module.enable' => ['core' => true, 'saml' => true, 'exampleauth' => true],
    'debug' => ['saml' => true, 'backtraces' => true, 'validatexml' => false],
    'showerrors' => true,
    'errorreporting' => false,
    'production' => false,
    'logging.level' => SimpleSAML\Logger::DEBUG,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'statistics.out' => [],
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => '$base/sessions',
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'language.cookie.secure' => false,
    'language.cookie.samesite' => null,
    'assertion.allowed_clock_skew' => 180,
];
EOF

  # Users for HTTP Basic auth (exampleauth:UserPass, static users).
  cat > "$conf/authsources.php" <<'EOF'
<?php
// Generated by interop/idp.sh
$config = [
    'admin' => ['core:AdminPassword'],
    'example-userpass' => [
        'exampleauth:UserPass',
        // one role -> no role choice needed
        'alice:alice-pass' => [
            'uid' => ['alice'],
            'https://aws.amazon.com/SAML/Attributes/Role' => [
                'arn:aws:iam::123456789012:role/Admin,arn:aws:iam::123456789012:saml-provider/IdP',
            ],
            'https://aws.amazon.com/SAML/Attributes/RoleSessionName' => ['alice@example.org'],
            'https://aws.amazon.com/SAML/Attributes/SessionDuration' => ['3600'],
        ],
        // two roles in two accounts (second one in "provider,role" order)
        'bob:bob-pass' => [
            'uid' => ['bob'],
            'https://aws.amazon.com/SAML/Attributes/Role' => [
                'arn:aws:iam::123456789012:role/Admin,arn:aws:iam::123456789012:saml-provider/IdP',
                'arn:aws:iam::210987654321:saml-provider/IdP,arn:aws:iam::210987654321:role/ReadOnly',
            ],
            'https://aws.amazon.com/SAML/Attributes/RoleSessionName' => ['bob'],
        ],
        // authenticates fine but has no AWS Role attribute
        'carol:carol-pass' => [
            'uid' => ['carol'],
            'https://aws.amazon.com/SAML/Attributes/RoleSessionName' => ['carol'],
        ],
        // one role, short session (for refresher tests)
        'dave:dave-pass' => [
            'uid' => ['dave'],
            'https://aws.amazon.com/SAML/Attributes/Role' => [
                'arn:aws:iam::123456789012:role/Refresher,arn:aws:iam::123456789012:saml-provider/IdP',
            ],
            'https://aws.amazon.com/SAML/Attributes/RoleSessionName' => ['dave'],
            'https://aws.amazon.com/SAML/Attributes/SessionDuration' => ['900'],
        ],
        // one role whose sessions are short (20 s: far below STS's 900 s minimum).
        // The tool clamps it to DurationSeconds=900; sts_proxy.py drops
        // DurationSeconds for this role only, and moto then takes the lifetime
        // from this attribute: it stands in for a short-lived role, so that a
        // refresher renews within seconds instead of 7.5 minutes.
        'erin:erin-pass' => [
            'uid' => ['erin'],
            'https://aws.amazon.com/SAML/Attributes/Role' => [
                'arn:aws:iam::123456789012:role/ShortLived,arn:aws:iam::123456789012:saml-provider/IdP',
            ],
            'https://aws.amazon.com/SAML/Attributes/RoleSessionName' => ['erin'],
            'https://aws.amazon.com/SAML/Attributes/SessionDuration' => ['@IDP_SHORT_SESSION@'],
        ],
    ],
];
EOF

  sed -i "s/@IDP_SHORT_SESSION@/$IDP_SHORT_SESSION/" "$conf/authsources.php"

  cat > "$meta/saml20-idp-hosted.php" <<EOF
<?php
// Generated by interop/idp.sh (instance $name)
\$metadata['$IDP_ENTITY_ID'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp-signing.key',
    'certificate' => 'idp-signing.crt',
    'auth' => 'example-userpass',
    // ECP profile: adds the PAOS ACS binding and the SOAP SSO endpoint
    'saml20.ecp' => true,
    'saml20.sign.assertion' => true,
    'saml20.sign.response' => $sign_php,
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'authproc' => [
        10 => [
            'class' => 'saml:AttributeNameID',
            'attribute' => 'uid',
            'Format' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
        ],
        50 => [
            'class' => 'core:AttributeLimit',
            'https://aws.amazon.com/SAML/Attributes/Role',
            'https://aws.amazon.com/SAML/Attributes/RoleSessionName',
            'https://aws.amazon.com/SAML/Attributes/SessionDuration',
        ],
    ],
];
EOF

  cat > "$meta/saml20-sp-remote.php" <<EOF
<?php
// Generated by interop/idp.sh (instance $name) - AWS as the SP.
\$metadata['urn:amazon:webservices'] = [
    'AssertionConsumerService' => [
        ['index' => 0, 'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
         'Location' => 'https://signin.aws.amazon.com/saml'],
        ['index' => 1, 'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:PAOS',
         'Location' => 'https://signin.aws.amazon.com/saml'],
    ],
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'validate.authnrequest' => false,
    // true: re-check Basic-auth credentials even when session cookies come back.
    'ForceAuthn' => $force_php,
];
EOF
  chmod 644 "$conf"/*.php "$meta"/*.php
  for f in "$conf"/*.php "$meta"/*.php; do php -l "$f" >/dev/null || die "syntax error in $f"; done
}

start_idp() {
  [ -d "$SSP/www" ] || die "$SSP/www missing - simplesamlphp not installed?"
  local phpver M p
  phpver=$(php -r 'echo PHP_MAJOR_VERSION.".".PHP_MINOR_VERSION;')
  M=/usr/lib/apache2/modules
  [ -f "$M/libphp$phpver.so" ] || die "mod_php for PHP $phpver missing (install libapache2-mod-php)"
  stop_idp
  mkdir -p "$IDP_STATE" "$RUN/apache" "$LOG"
  chmod 755 "$IDP_STATE"
  chown "$RUN_USER:$RUN_USER" "$LOG"
  for p in "$IDP_A_HTTP_PORT" "$IDP_A_HTTPS_PORT" "$IDP_B_HTTP_PORT" "$IDP_B_HTTPS_PORT"; do
    port_free "$p" || die "$BIND:$p already in use"
  done
  gen_keys
  local v
  for v in "$IDP_A_SIGN_RESPONSE" "$IDP_A_FORCE_AUTHN" "$IDP_B_SIGN_RESPONSE" "$IDP_B_FORCE_AUTHN"; do
    case "$v" in 0|1) ;; *) die "IDP_*_SIGN_RESPONSE / IDP_*_FORCE_AUTHN must be 0 or 1";; esac
  done
  write_instance a "$IDP_A_SIGN_RESPONSE" "$IDP_A_FORCE_AUTHN"
  write_instance b "$IDP_B_SIGN_RESPONSE" "$IDP_B_FORCE_AUTHN"

  cat > "$IDP_STATE/httpd.conf" <<EOF
# Generated by interop/idp.sh - standalone Apache, loopback only, two IdP instances.
ServerRoot "/etc/apache2"
ServerName 127.0.0.1
DefaultRuntimeDir "$RUN/apache"
PidFile "$RUN/apache.pid"
Mutex file:$RUN/apache default
User $RUN_USER
Group $RUN_USER
ErrorLog "$LOG/apache-error.log"
LogLevel warn
LogFormat "%h %l %u %t \"%r\" %>s %b %{local}p" common
CustomLog "$LOG/apache-access.log" common
# The Duo headers of each request (issue 22 item 5): port, factor (both spellings), device.
CustomLog "$LOG/apache-duo.log" "%{local}p %{X-Shibboleth-Duo-Factor}i %{X-Shiboleth-Duo-Factor}i %{X-Shibboleth-Duo-Device}i"
LoadModule mpm_prefork_module $M/mod_mpm_prefork.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule mime_module $M/mod_mime.so
LoadModule dir_module $M/mod_dir.so
LoadModule alias_module $M/mod_alias.so
LoadModule env_module $M/mod_env.so
LoadModule socache_shmcb_module $M/mod_socache_shmcb.so
LoadModule ssl_module $M/mod_ssl.so
LoadModule php_module $M/libphp$phpver.so
StartServers 2
MinSpareServers 2
MaxSpareServers 4
MaxRequestWorkers 16
TypesConfig /etc/mime.types
DocumentRoot "$SSP/www"
Timeout 60
Listen $BIND:$IDP_A_HTTP_PORT
Listen $BIND:$IDP_A_HTTPS_PORT
Listen $BIND:$IDP_B_HTTP_PORT
Listen $BIND:$IDP_B_HTTPS_PORT
Alias /simplesaml "$SSP/www"
<Directory />
    Require all denied
</Directory>
<Directory "$SSP/www">
    Require all granted
    DirectoryIndex index.php
    <FilesMatch "\.php\$">
        SetHandler application/x-httpd-php
    </FilesMatch>
</Directory>
SSLSessionCache "shmcb:$RUN/apache/ssl_scache(512000)"
SSLCertificateFile "$CERT/tls-server.crt"
SSLCertificateKeyFile "$CERT/tls-server.key"
<VirtualHost $BIND:$IDP_A_HTTP_PORT>
    SetEnv SIMPLESAMLPHP_CONFIG_DIR "$IDP_STATE/idp-a/config"
</VirtualHost>
<VirtualHost $BIND:$IDP_A_HTTPS_PORT>
    SSLEngine on
    SetEnv SIMPLESAMLPHP_CONFIG_DIR "$IDP_STATE/idp-a/config"
</VirtualHost>
<VirtualHost $BIND:$IDP_B_HTTP_PORT>
    SetEnv SIMPLESAMLPHP_CONFIG_DIR "$IDP_STATE/idp-b/config"
</VirtualHost>
<VirtualHost $BIND:$IDP_B_HTTPS_PORT>
    SSLEngine on
    SetEnv SIMPLESAMLPHP_CONFIG_DIR "$IDP_STATE/idp-b/config"
</VirtualHost>
EOF
  apache2 -t -f "$IDP_STATE/httpd.conf" 2>"$LOG/apache-configtest.log" \
    || { cat "$LOG/apache-configtest.log" >&2; die "apache config test failed"; }
  apache2 -f "$IDP_STATE/httpd.conf" -k start
  for _ in $(seq 50); do [ -s "$RUN/apache.pid" ] && break; sleep 0.1; done
  [ -s "$RUN/apache.pid" ] || die "apache did not write its pid file; see $LOG/apache-error.log"

  # readiness: every port answers the metadata page
  local url ok
  for url in "http://$BIND:$IDP_A_HTTP_PORT" "https://$BIND:$IDP_A_HTTPS_PORT" \
             "http://$BIND:$IDP_B_HTTP_PORT" "https://$BIND:$IDP_B_HTTPS_PORT"; do
    ok=0
    for _ in $(seq 100); do
      if curl -fsS --cacert "$CERT/tls-ca.crt" -o "$IDP_STATE/metadata.xml" \
           "$url/simplesaml/saml2/idp/metadata.php" 2>/dev/null; then ok=1; break; fi
      sleep 0.1
    done
    [ "$ok" = 1 ] || die "IdP at $url did not come up; see $LOG/ and $IDP_STATE/idp-*/log/"
    grep -q 'urn:oasis:names:tc:SAML:2.0:bindings:SOAP' "$IDP_STATE/metadata.xml" \
      || die "IdP metadata at $url has no SOAP (ECP) SingleSignOnService"
  done
  log "SimpleSAMLphp up (apache pid $(cat "$RUN/apache.pid")):"
  log "  A (sign response $IDP_A_SIGN_RESPONSE, force authn $IDP_A_FORCE_AUTHN): https://$BIND:$IDP_A_HTTPS_PORT/simplesaml/saml2/idp/SSOService.php"
  log "  B (sign response $IDP_B_SIGN_RESPONSE, force authn $IDP_B_FORCE_AUTHN): https://$BIND:$IDP_B_HTTPS_PORT/simplesaml/saml2/idp/SSOService.php"
}

case "${1:-}" in
  start) start_idp ;;
  stop) stop_idp ;;
  *) die "usage: $0 start|stop" ;;
esac
