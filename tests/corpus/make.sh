#!/bin/bash
# tests/corpus/make.sh: makes tests/corpus/made/ with the reference tools (OpenSSL 3.0 and
# OpenJDK 17's keytool on Debian 12); SOURCES says which file each command made. Run it from
# anywhere; it replaces made/. Keys and serials are new each run: the specs read what is there.
# Store password: changeit (from the environment, never on a command line).
set -eu
cd "$(dirname "$0")"
rm -rf made && mkdir -p made/x509 made/keystores && cd made
export STOREPASS=changeit LANG=C.UTF-8
kt() { keytool "$@" -storepass:env STOREPASS >/dev/null 2>&1 || { echo "failed: keytool $*" >&2; exit 1; }; }
ossl() { openssl "$@" 2>/dev/null; }

# --- certificates -------------------------------------------------------------------------
cat > x509/names.cnf <<'CNF'
[req]
distinguished_name = dn
[dn]
[dir_sect]
C = NL
O = Biobank
CN = directory name
CNF
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout x509/ca.key -out x509/ca.pem \
  -days 3650 -subj "/O=Corpus/CN=Corpus Root CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout x509/inter.key -out x509/inter.csr \
  -subj "/O=Corpus/CN=Corpus Issuing CA"
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' > x509/inter.ext
ossl x509 -req -in x509/inter.csr -CA x509/ca.pem -CAkey x509/ca.key -CAcreateserial -days 3000 \
  -extfile x509/inter.ext -out x509/inter.pem
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout x509/leaf.key -out x509/leaf.csr \
  -subj "/O=Corpus/CN=db.corpus.example"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:db.corpus.example,IP:127.0.0.1\n' > x509/leaf.ext
ossl x509 -req -in x509/leaf.csr -CA x509/inter.pem -CAkey x509/inter.key -CAcreateserial -days 2000 \
  -extfile x509/leaf.ext -out x509/leaf.pem
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout x509/all-names.key -out x509/all-names.pem \
  -days 3650 -subj "/CN=every general name" -config x509/names.cnf -addext "subjectAltName=DNS:db.example,\
IP:10.0.0.5,IP:fe80::1,email:dba@example.org,URI:https://example.org/db,dirName:dir_sect,RID:1.2.3.4,\
otherName:1.3.6.1.4.1.311.20.2.3;UTF8:dba@EXAMPLE.ORG,otherName:1.2.3.4.5;INTEGER:42"
ossl x509 -in x509/ca.pem -trustout -addtrust serverAuth -addreject clientAuth -out x509/trusted-ca.pem
ossl x509 -in x509/leaf.pem -outform DER -out x509/leaf.der
{ cat x509/leaf.der; printf 'trailing bytes\n'; } > x509/leaf-trailing.der
ossl x509 -in x509/leaf.pem -text -out x509/leaf-with-text.pem
cat x509/leaf.pem x509/inter.pem x509/ca.pem > x509/chain-bundle.pem
rm -f x509/*.csr x509/*.ext x509/*.srl x509/names.cnf

# --- keystores ----------------------------------------------------------------------------
for t in jks pkcs12; do
  kt -importcert -noprompt -alias "Corpus Root" -file x509/ca.pem -keystore keystores/trusted.$t -storetype $t
  kt -importcert -noprompt -alias issuing -file x509/inter.pem -keystore keystores/trusted.$t
  # a private key with a chain of three: keytool signs it with a CA it holds
  kt -genkeypair -alias ca -keyalg EC -dname "CN=Keytool CA" -ext bc:c -keystore keystores/keys.$t \
    -storetype $t -keypass:env STOREPASS
  kt -genkeypair -alias server -keyalg RSA -keysize 2048 -dname "CN=server.example" -keystore keystores/keys.$t \
    -keypass:env STOREPASS
  kt -certreq -alias server -keystore keystores/keys.$t -file keystores/server.csr
  kt -gencert -alias ca -infile keystores/server.csr -outfile keystores/server.pem -keystore keystores/keys.$t \
    -ext san=dns:server.example
  kt -importcert -noprompt -alias server -file keystores/server.pem -keystore keystores/keys.$t
  kt -importcert -noprompt -alias "Corpus Root" -file x509/ca.pem -keystore keystores/keys.$t
  for a in "Ärger-CA" "ΟΔΥΣΣΕΥΣ" "İstanbul" "key🔑Ω"; do
    kt -importcert -noprompt -alias "$a" -file x509/inter.pem -keystore keystores/unicode.$t -storetype $t
  done
done
rm -f keystores/server.csr keystores/server.pem
kt -genseckey -alias "Master-AES" -keyalg AES -keysize 256 -keystore keystores/secret.p12 -storetype pkcs12 \
  -keypass:env STOREPASS
kt -genseckey -alias hmac -keyalg HmacSHA256 -keysize 256 -keystore keystores/secret.p12 -keypass:env STOREPASS
kt -importcert -noprompt -alias "Corpus Root" -file x509/ca.pem -keystore keystores/secret.p12
L=-J-Dkeystore.pkcs12.legacy
kt $L -importcert -noprompt -alias "Corpus Root" -file x509/ca.pem -keystore keystores/legacy.p12 -storetype pkcs12
kt $L -genkeypair -alias server -keyalg EC -dname "CN=legacy" -keystore keystores/legacy.p12 -keypass:env STOREPASS
kt $L -genseckey -alias sealed -keyalg AES -keysize 128 -keystore keystores/legacy.p12 -keypass:env STOREPASS
openssl pkcs12 -export -legacy -in x509/leaf.pem -inkey x509/leaf.key -certfile x509/inter.pem -name web \
  -out keystores/openssl-legacy.p12 -passout env:STOREPASS
openssl pkcs12 -export -in x509/leaf.pem -inkey x509/leaf.key -certfile x509/inter.pem \
  -out keystores/openssl-noname.p12 -passout env:STOREPASS
openssl pkcs12 -export -nokeys -in x509/chain-bundle.pem -out keystores/openssl-nokeys.p12 -passout env:STOREPASS
{ cat keystores/trusted.jks; printf 'appended after the digest\n'; } > keystores/trailing.jks
rm -f x509/*.key
