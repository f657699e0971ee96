#!/usr/bin/env bash
# Unit test of lstctl's offline subcommands (no services): the reference doc's vectors,
# keygen/derive, encrypt/decrypt round trips, stdin variants, callback verify/decode, and
# clear errors with the right exit codes. Usage: test_lstctl.sh PATH_TO_LSTCTL
# ok() never fails, so "test && ok || bad" is a safe if-else; bash -c scripts expand later.
# shellcheck disable=SC2015,SC2016
set -uo pipefail
CTL=${1:?usage: test_lstctl.sh PATH_TO_LSTCTL}
CTL=$(realpath "$CTL")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
# The Gateway commands must not pick up a developer's settings.
unset LST_GATEWAY_URL LST_GATEWAY_ID LST_GATEWAY_SECRET LST_PRIVATE_KEY
unset LST_GATEWAY_ID_FILE LST_GATEWAY_SECRET_FILE LST_PRIVATE_KEY_FILE

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok   $1"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL $1"
}
# expect NAME WANT_RC WANT_STDOUT -- CMD...: runs CMD, compares exit code and stdout exactly.
expect() {
    local name=$1 want_rc=$2 want_out=$3
    shift 4
    local out rc
    out=$("$@" 2>"$TMP/err")
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && [ "$out" == "$want_out" ]; then
        ok "$name"
    else
        bad "$name (rc $rc, want $want_rc; stdout '$out', want '$want_out'; stderr: $(cat "$TMP/err"))"
    fi
}
# expect_err NAME WANT_RC PATTERN -- CMD...: exit code and a stderr message matching PATTERN.
expect_err() {
    local name=$1 want_rc=$2 pat=$3
    shift 4
    local rc
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && grep -q -- "$pat" "$TMP/err"; then
        ok "$name"
    else
        bad "$name (rc $rc, want $want_rc; stderr '$(cat "$TMP/err")' lacks '$pat')"
    fi
}

# ---- lookup hashes (docs/threema-gateway.md section 3) ----
EMAIL_HASH=1ea093239cc5f0e1b6ec81b866265b921f26dc4033025410063309f4d1a8ee2c
PHONE_HASH=ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc
expect "hash email vector" 0 $EMAIL_HASH -- "$CTL" hash --email test@threema.ch
expect "hash email normalised" 0 $EMAIL_HASH -- "$CTL" hash -e "  Test@THREEMA.ch "
expect "hash email --email=" 0 $EMAIL_HASH -- "$CTL" hash --email=test@threema.ch
expect "hash phone vector" 0 $PHONE_HASH -- "$CTL" hash --phone 41791234567
expect "hash phone normalised" 0 $PHONE_HASH -- "$CTL" hash -p "+41 79 123-45-67"
expect_err "hash needs one option" 2 "exactly one" -- "$CTL" hash
expect_err "hash not both" 2 "exactly one" -- "$CTL" hash -e a@b.c -p 41
expect_err "hash bad phone" 1 "invalid phone" -- "$CTL" hash -p "41x79"

# ---- callback MAC vector ----
VECTOR='from=ECHOECHO&to=*TESTTST&messageId=0102030405060708&date=1616950936&nonce=ffffffffffffffffffffffffffffffffffffffffffffffff&box=012345abcdef&mac=622b362e8353658ee649a5548acecc9ce9b88384d6b7e08e212446d68455b14e'
expect "callback vector valid" 0 valid -- "$CTL" callback-verify nevergonnagiveyouup "$VECTOR"
expect "callback vector wrong secret" 1 invalid -- "$CTL" callback-verify nevergonnaletyoudown "$VECTOR"
expect "callback vector from stdin (echo's newline)" 0 valid -- \
    bash -c 'echo "$1" | "$0" callback-verify nevergonnagiveyouup' "$CTL" "$VECTOR"
expect "callback tampered date" 1 invalid -- "$CTL" callback-verify nevergonnagiveyouup \
    "${VECTOR/1616950936/1616950937}"
expect "callback missing mac" 1 invalid -- "$CTL" callback-verify nevergonnagiveyouup \
    "${VECTOR%&mac=*}"
expect "callback short mac" 1 invalid -- "$CTL" callback-verify nevergonnagiveyouup \
    "${VECTOR%?}"

# ---- keys ----
expect "keygen" 0 "" -- "$CTL" keygen alice.key alice.pub
expect "keygen bob" 0 "" -- "$CTL" keygen bob.key bob.pub
mode=$(stat -c %a alice.key)
[ "$mode" = 600 ] && ok "private key file mode 0600" || bad "private key file mode $mode"
grep -Eq '^private:[0-9a-f]{64}$' alice.key && ok "private key format" || bad "private key format"
grep -Eq '^public:[0-9a-f]{64}$' alice.pub && ok "public key format" || bad "public key format"
expect "derive from file = public file" 0 "$(cat alice.pub)" -- "$CTL" derive alice.key
expect "derive from string" 0 "$(cat alice.pub)" -- "$CTL" derive "$(cat alice.key)"
expect_err "keygen refuses to overwrite" 1 "alice.key" -- "$CTL" keygen alice.key other.pub
[ ! -e other.pub ] && ok "no half pair written" || bad "other.pub written"
expect_err "keygen half pair removed" 1 "alice.pub" -- "$CTL" keygen carol.key alice.pub
[ ! -e carol.key ] && ok "private key of a failed pair removed" || bad "carol.key left behind"
expect_err "derive bad hex" 1 "bad private key" -- "$CTL" derive "private:zz"
expect_err "derive zero key" 1 "bad private key" -- "$CTL" derive \
    "private:0000000000000000000000000000000000000000000000000000000000000000"
expect_err "derive public given" 1 "bad private key" -- "$CTL" derive "$(cat alice.pub)"
expect_err "derive missing file" 1 "bad private key" -- "$CTL" derive ./no-such.key
# Doc vector of the SDK test suite style: a fixed private key derives a fixed public key.
SK=private:40627ae49d3fe3eb8c37d38b1b1656b7857de6c74b5365a575de1c568f372740
PK=public:60cf82f39495234d883136737cdd048067429e48527d5ab7acbcb7bffd3ec44f
expect "derive demo key pair" 0 "$PK" -- "$CTL" derive "$SK"

# ---- encrypt / decrypt ----
out=$("$CTL" encrypt alice.key "$(cat bob.pub)" "Guten Morgen, Jürgen 🚚")
rc=$?
nonce=$(sed -n 1p <<<"$out")
box=$(sed -n 2p <<<"$out")
if [ $rc -eq 0 ] && [[ "$nonce" =~ ^[0-9a-f]{48}$ ]] && [[ "$box" =~ ^[0-9a-f]+$ ]] &&
    [ "$(wc -l <<<"$out")" -eq 2 ]; then
    ok "encrypt prints nonce and box"
else
    bad "encrypt output '$out' rc $rc"
fi
# 16 tag + 1 type + body (26 bytes) + padding (>= 1, body + padding >= 32) is at least 44.
[ ${#box} -ge 88 ] && ok "box has tag and padding" || bad "box too short: ${#box}"
expect "decrypt round trip" 0 "Guten Morgen, Jürgen 🚚" -- "$CTL" decrypt bob.key alice.pub "$nonce" "$box"
expect "decrypt box from stdin" 0 "Guten Morgen, Jürgen 🚚" -- \
    bash -c 'echo "$3" | "$0" decrypt bob.key alice.pub "$1"' "$CTL" "$nonce" x "$box"
expect "decrypt --json" 0 '{"type":"text","typeByte":1,"text":"Guten Morgen, Jürgen 🚚"}' -- \
    "$CTL" decrypt --json bob.key alice.pub "$nonce" "$box"
expect "decrypt uppercase hex" 0 "Guten Morgen, Jürgen 🚚" -- "$CTL" decrypt bob.key alice.pub \
    "${nonce^^}" "${box^^}"
# (alice.key + bob.pub gives the same shared key as bob.key + alice.pub: a third party's key.)
"$CTL" keygen eve.key eve.pub
expect_err "decrypt wrong key" 1 "does not open" -- "$CTL" decrypt eve.key alice.pub "$nonce" "$box"
expect_err "decrypt tampered box" 1 "does not open" -- "$CTL" decrypt bob.key alice.pub "$nonce" \
    "${box:0:40}$([ "${box:40:1}" = 0 ] && echo 1 || echo 0)${box:41}"
expect_err "decrypt bad nonce" 1 "bad nonce" -- "$CTL" decrypt bob.key alice.pub abcd "$box"
expect_err "decrypt odd hex" 1 "bad box" -- "$CTL" decrypt bob.key alice.pub "$nonce" "${box}0"
expect_err "decrypt short box" 1 "cannot decrypt" -- "$CTL" decrypt bob.key alice.pub "$nonce" 0011
expect_err "decrypt bad public key" 1 "bad public key" -- "$CTL" decrypt bob.key public:1234 \
    "$nonce" "$box"

# Text from stdin is taken verbatim, as the SDK's encrypt does (a trailing newline stays).
out=$(printf 'line one\nline two\n' | "$CTL" encrypt alice.key bob.pub)
"$CTL" decrypt --json bob.key alice.pub "$(sed -n 1p <<<"$out")" "$(sed -n 2p <<<"$out")" >json.txt
if grep -qF '"text":"line one\nline two\n"' json.txt; then
    ok "encrypt stdin verbatim"
else
    bad "encrypt stdin verbatim: $(cat json.txt)"
fi
# Two encryptions of the same text differ (fresh nonce, random padding).
a=$("$CTL" encrypt alice.key bob.pub same | sed -n 2p)
b=$("$CTL" encrypt alice.key bob.pub same | sed -n 2p)
[ "$a" != "$b" ] && ok "fresh nonce per message" || bad "same box twice"
expect_err "encrypt too long" 1 "cannot encrypt" -- "$CTL" encrypt alice.key bob.pub \
    "$(head -c 3501 /dev/zero | tr '\0' x)"
expect_err "encrypt invalid UTF-8" 1 "cannot encrypt" -- "$CTL" encrypt alice.key bob.pub \
    "$(printf 'a\xffb')"
expect_err "encrypt private key as public" 1 "bad public key" -- "$CTL" encrypt alice.key alice.key x

# ---- callback-decode: a callback signed here (HMAC by Python's hmac), encrypted by lstctl ----
SECRET=test-secret-0123
out=$("$CTL" encrypt alice.key bob.pub "Bin unterwegs")
n=$(sed -n 1p <<<"$out")
bx=$(sed -n 2p <<<"$out")
mac=$(python3 -c 'import hmac, hashlib, sys
print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())' \
    "$SECRET" "ABCD1234*LSTDEMO0011223344556677""1700000000$n$bx")
body="from=ABCD1234&to=%2ALSTDEMO&messageId=0011223344556677&date=1700000000&nonce=$n&box=$bx&mac=$mac&nickname=Petra"
expect "callback-verify own body" 0 valid -- "$CTL" callback-verify "$SECRET" "$body"
expect "callback-decode" 0 '{"from":"ABCD1234","to":"*LSTDEMO","messageId":"0011223344556677","date":1700000000,"nickname":"Petra","message":{"type":"text","typeByte":1,"text":"Bin unterwegs"}}' -- \
    "$CTL" callback-decode "$SECRET" bob.key alice.pub "$body"
expect "callback-decode stdin" 0 '{"from":"ABCD1234","to":"*LSTDEMO","messageId":"0011223344556677","date":1700000000,"nickname":"Petra","message":{"type":"text","typeByte":1,"text":"Bin unterwegs"}}' -- \
    bash -c 'echo "$1" | "$0" callback-decode "$2" bob.key alice.pub' "$CTL" "$body" "$SECRET"
expect "callback-decode wrong secret" 1 invalid -- "$CTL" callback-decode wrong-secret bob.key \
    alice.pub "$body"
expect_err "callback-decode wrong key" 1 "cannot decrypt" -- "$CTL" callback-decode "$SECRET" \
    eve.key alice.pub "$body"

# ---- usage, help, configuration ----
expect_err "no command" 2 "usage" -- "$CTL"
expect_err "unknown command" 2 "unknown command" -- "$CTL" frobnicate
expect_err "unknown option" 2 "unknown option" -- "$CTL" derive --frob alice.key
expect_err "missing arguments" 2 "missing arguments" -- "$CTL" encrypt alice.key
expect_err "too many arguments" 2 "too many" -- "$CTL" derive a b
"$CTL" --help | grep -q callback-decode && ok "--help lists commands" || bad "--help"
"$CTL" send --help | grep -q LST_GATEWAY_SECRET && ok "send --help lists settings" || bad "send --help"
"$CTL" help decrypt | grep -q "NONCE" && ok "help COMMAND" || bad "help decrypt"
expect_err "credits without configuration" 2 "LST_GATEWAY_ID is required" -- "$CTL" credits
expect_err "bad gateway id" 2 "LST_GATEWAY_ID" -- env LST_GATEWAY_ID=nope LST_GATEWAY_SECRET=s \
    "$CTL" credits
# A port nobody listens on (bound, not listening, then closed) is a transport error: retry.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
expect_err "unreachable gateway is retry-later" 3 "retry" -- env LST_GATEWAY_ID='*LSTDEMO' \
    LST_GATEWAY_SECRET=s LST_GATEWAY_URL="http://127.0.0.1:$port" "$CTL" credits
expect_err "send needs a private key" 2 "LST_PRIVATE_KEY" -- env LST_GATEWAY_ID='*LSTDEMO' \
    LST_GATEWAY_SECRET=s LST_GATEWAY_URL="http://127.0.0.1:$port" "$CTL" send ABCD1234 hi
expect_err "send bad recipient" 1 "not a Threema ID" -- "$CTL" send abc hi
# The secret must never be echoed in a configuration error.
env LST_GATEWAY_ID=bad LST_GATEWAY_SECRET=supersecret-value "$CTL" credits >/dev/null 2>"$TMP/err"
grep -q supersecret-value "$TMP/err" && bad "secret printed" || ok "secret not printed"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
