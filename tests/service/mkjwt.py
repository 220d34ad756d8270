#!/usr/bin/env python3
"""mkjwt.py - test tokens and a JWKS for the auth tests (stdlib + openssl CLI).

  mkjwt.py jwks KEY.pem KID            -> prints a JWKS with KEY's public half
  mkjwt.py token KEY.pem MODE HEADER PAYLOAD
      MODE: rs256 | none | hs256 (keyed with the public key PEM) | stripped
      HEADER/PAYLOAD: JSON; "NOW" inside PAYLOAD is replaced by the current time
"""
import base64, hashlib, hmac, json, re, subprocess, sys, time

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def modulus(key):
    out = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], capture_output=True, check=True).stdout.decode()
    return bytes.fromhex(out.strip().split("=", 1)[1])

def pubpem(key):
    return subprocess.run(["openssl", "rsa", "-in", key, "-pubout"], capture_output=True, check=True).stdout

def main():
    if sys.argv[1] == "jwks":
        key, kid = sys.argv[2], sys.argv[3]
        print(json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                                    "n": b64(modulus(key)), "e": b64((65537).to_bytes(3, "big"))}]}))
        return
    key, mode, header, payload = sys.argv[2:6]
    now = int(time.time())
    payload = re.sub(r"NOW([+-]\d+)?", lambda m: str(now + int(m.group(1) or 0)), payload)
    si = b64(header.encode()) + "." + b64(payload.encode())
    if mode == "none":
        sig = ""
    elif mode == "stripped":
        sig = "SIGNATURE_REMOVED_BY_GOOGLE"
    elif mode == "hs256":
        sig = b64(hmac.new(pubpem(key), si.encode(), hashlib.sha256).digest())
    else:
        sig = b64(subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=si.encode(),
                                 capture_output=True, check=True).stdout)
    print(si + "." + sig)

main()
