"""Cross-signing in the key directory (keys.upload with an identity and a signature,
keys.sign, keys.query) and one's devices over REST (list, rename, revoke): the server
verifies what it stores, only the owner acts on a device, and a revoked device's
connections close at once, its keys leave the directory and its rooms are told."""

from __future__ import annotations

import pytest
from raw_ws import closed_with, raw_connection

from clients.python import ServerError, log_in
from clients.python.rest import request
from harness import PASSWORD, ServerUnderTest, connected, practitioner
from protocol import CloseCode
from protocol.crypto.identity import (
    IdentityKeys,
    parse_device_signature,
    parse_identity,
    sign_device,
    verify_device,
)
from protocol.crypto.keys import DeviceKeys, parse_bundle
from protocol.errors import ErrorCode
from protocol.frames import Event


async def _refused(code: ErrorCode, call: object) -> str:
    with pytest.raises(ServerError) as err:
        await call  # type: ignore[misc]
    assert err.value.code == code, err.value
    return err.value.message


async def test_identity_and_device_signatures_are_verified_and_published(
    server: ServerUnderTest,
) -> None:
    alice = await practitioner(server.url, server.store)
    phone = await log_in(server.url, alice.email, PASSWORD, device_name="phone")
    bob = await practitioner(server.url, server.store)
    a, p, b = [await connected(x) for x in (alice, phone, bob)]
    try:
        identity, other = IdentityKeys.generate(), IdentityKeys.generate()
        laptop_keys, phone_keys = DeviceKeys.generate(), DeviceKeys.generate()
        laptop = laptop_keys.bundle(alice.user_id, alice.device_id)
        record = identity.record(alice.user_id).to_bytes()
        signature = sign_device(identity, laptop).to_bytes()
        # Bad input: clear errors, nothing stored.
        forged = signature[:10] + bytes([signature[10] ^ 1]) + signature[11:]
        for bad, code in [
            (dict(identity=b"\x01" + b"\x00" * 90), ErrorCode.BAD_FRAME),
            (dict(identity=record, signature=forged), ErrorCode.BAD_FRAME),
            (dict(identity=record, signature=b"\x07junk"), ErrorCode.BAD_FRAME),
            (dict(signature=signature), ErrorCode.BAD_FRAME),  # no identity anywhere
            (dict(identity=identity.record(bob.user_id).to_bytes()), ErrorCode.FORBIDDEN),
            (
                dict(identity=other.record(alice.user_id).to_bytes(), signature=signature),
                ErrorCode.BAD_FRAME,
            ),  # signed by another identity
        ]:
            await _refused(code, a.upload_keys(laptop.to_bytes(), **bad))  # type: ignore[arg-type]
        assert await server.store.identities([alice.user_id]) == []
        assert await server.store.device_keys([alice.user_id]) == []

        await a.upload_keys(laptop.to_bytes(), identity=record, signature=signature)
        await p.upload_keys(phone_keys.bundle(alice.user_id, phone.device_id).to_bytes())
        # Another identity for alice: refused without reset (the first device holds it).
        message = await _refused(
            ErrorCode.CONFLICT,
            p.upload_keys(
                phone_keys.bundle(alice.user_id, phone.device_id).to_bytes(),
                identity=other.record(alice.user_id).to_bytes(),
            ),
        )
        assert "another identity key" in message
        await a.create_room("group", [bob.user_id])
        directory = await b.query_key_directory([alice.user_id])
        assert directory.identities == (record,)
        assert directory.signatures == (signature,)  # the phone is not signed yet
        assert len(directory.keys) == 2

        # The laptop (which holds the identity) signs the phone: keys.sign.
        phone_bundle = parse_bundle(
            next(k for k in directory.keys if parse_bundle(k).device_id == phone.device_id)
        )
        phone_signature = sign_device(identity, phone_bundle).to_bytes()
        await _refused(ErrorCode.FORBIDDEN, a.sign_device(alice.device_id, phone_signature))
        await _refused(ErrorCode.BAD_FRAME, a.sign_device(phone.device_id, b"\x01" + b"\x00" * 70))
        bob_keys = DeviceKeys.generate().bundle(bob.user_id, bob.device_id)
        await b.upload_keys(bob_keys.to_bytes())
        # Someone else's device: forbidden, whatever they sign.
        await _refused(
            ErrorCode.FORBIDDEN,
            b.sign_device(
                phone.device_id, sign_device(IdentityKeys.generate(), phone_bundle).to_bytes()
            ),
        )
        await _refused(
            ErrorCode.FORBIDDEN,
            a.sign_device(bob.device_id, sign_device(identity, bob_keys).to_bytes()),
        )
        await a.sign_device(phone.device_id, phone_signature)
        directory = await b.query_key_directory([alice.user_id])
        parsed = parse_identity(directory.identities[0])
        bundles = {parse_bundle(k).device_id: parse_bundle(k) for k in directory.keys}
        for blob in directory.signatures:
            sig = parse_device_signature(blob)
            verify_device(parsed, bundles[sig.device_id], sig)
        assert {parse_device_signature(s).device_id for s in directory.signatures} == {
            alice.device_id,
            phone.device_id,
        }
        # The phone publishes new keys: unverified again, until signed again.
        await p.upload_keys(DeviceKeys.generate().bundle(alice.user_id, phone.device_id).to_bytes())
        directory = await b.query_key_directory([alice.user_id])
        assert [parse_device_signature(s).device_id for s in directory.signatures] == [
            alice.device_id
        ]
        # A reset replaces the identity and drops the old key's signatures.
        await p.upload_keys(
            phone_keys.bundle(alice.user_id, phone.device_id).to_bytes(),
            identity=other.record(alice.user_id).to_bytes(),
            signature=sign_device(
                other, phone_keys.bundle(alice.user_id, phone.device_id)
            ).to_bytes(),
            reset=True,
        )
        directory = await b.query_key_directory([alice.user_id])
        assert directory.identities == (other.record(alice.user_id).to_bytes(),)
        assert [parse_device_signature(s).device_id for s in directory.signatures] == [
            phone.device_id
        ]
    finally:
        for client in (a, p, b):
            await client.close()


async def test_devices_are_listed_renamed_and_revoked_by_their_owner_only(
    server: ServerUnderTest,
) -> None:
    alice = await practitioner(server.url, server.store, device_name="Portable")
    phone = await log_in(server.url, alice.email, PASSWORD, device_name="Téléphone")
    bob = await practitioner(server.url, server.store)
    a = await connected(alice)
    b = await connected(bob)
    try:
        identity = IdentityKeys.generate()
        bundle = DeviceKeys.generate().bundle(alice.user_id, alice.device_id)
        await a.upload_keys(
            bundle.to_bytes(),
            identity=identity.record(alice.user_id).to_bytes(),
            signature=sign_device(identity, bundle).to_bytes(),
        )
        await server.services.last_seen.flush()
        listed = (await request(server.url, "GET", "/v1/devices", token=alice.token))["devices"]
        assert [(d["name"], d["verified"], d["current"]) for d in listed] == [
            ("Portable", True, True),
            ("Téléphone", False, False),
        ]
        assert listed[0]["last_seen_at"] is not None  # its connection's hello
        assert listed[1]["last_seen_at"] is None  # never connected
        renamed = await request(
            server.url,
            "PATCH",
            f"/v1/devices/{phone.device_id}",
            json={"name": "iPhone du cabinet"},
            token=alice.token,
        )
        assert renamed["device"]["name"] == "iPhone du cabinet"
        # Someone else's device: the same 404 as an unknown one; bad names: 400 naming it.
        for method, body in (("PATCH", {"name": "Volé"}), ("DELETE", None)):
            with pytest.raises(ServerError) as err:
                await request(
                    server.url, method, f"/v1/devices/{phone.device_id}", json=body, token=bob.token
                )
            assert err.value.code == ErrorCode.NOT_FOUND
        with pytest.raises(ServerError) as err:
            await request(
                server.url,
                "PATCH",
                f"/v1/devices/{phone.device_id}",
                json={"name": ""},
                token=alice.token,
            )
        assert err.value.code == ErrorCode.BAD_FRAME and "name" in err.value.message
        with pytest.raises(ServerError) as err:
            await request(server.url, "DELETE", f"/v1/devices/{alice.device_id}", token=alice.token)
        assert err.value.code == ErrorCode.CONFLICT  # the device in use: log out instead
    finally:
        await a.close()
        await b.close()


async def test_revoking_a_device_closes_it_and_tells_its_rooms(server: ServerUnderTest) -> None:
    alice = await practitioner(server.url, server.store)
    phone = await log_in(server.url, alice.email, PASSWORD, device_name="phone")
    bob = await practitioner(server.url, server.store)
    a = await connected(alice)
    b = await connected(bob)
    try:
        room = await a.create_room("group", [bob.user_id])
        await b.recv()  # member.joined
        keys = DeviceKeys.generate()
        async with raw_connection(server.url, phone) as phone_ws:
            from protocol.frames import Ack, KeysUpload

            await phone_ws.send(
                KeysUpload(2, keys.bundle(alice.user_id, phone.device_id).to_bytes())
            )
            assert isinstance(await phone_ws.reply_to(2), Ack)
            assert len(await b.query_keys([alice.user_id])) == 1
            reply = await request(
                server.url, "DELETE", f"/v1/devices/{phone.device_id}", token=alice.token
            )
            assert reply == {"revoked": phone.device_id, "rooms": 1}
            # Within a second (closed_with raises TimeoutError after limit_s).
            assert await closed_with(phone_ws, limit_s=1.0) == CloseCode.UNAUTHENTICATED
        event = await b.recv()
        assert isinstance(event, Event) and event.kind == "device.revoked"
        assert (event.room, event.user, event.device) == (room.id, alice.user_id, phone.device_id)
        assert await b.query_keys([alice.user_id]) == ()
        listed = (await request(server.url, "GET", "/v1/devices", token=alice.token))["devices"]
        assert [d["id"] for d in listed] == [alice.device_id]
        # Gone for good: no log-in as that device, no second revocation.
        with pytest.raises(ServerError) as err:
            await log_in(server.url, alice.email, PASSWORD, device_id=phone.device_id)
        assert err.value.code == ErrorCode.NOT_FOUND
        with pytest.raises(ServerError) as err:
            await request(server.url, "DELETE", f"/v1/devices/{phone.device_id}", token=alice.token)
        assert err.value.code == ErrorCode.NOT_FOUND
    finally:
        await a.close()
        await b.close()
