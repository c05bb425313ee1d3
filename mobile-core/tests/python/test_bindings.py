"""The generated Python bindings of the mobile core, driving a real tapline-server.

Two partners exchange taps through the bindings: Alice on the native transport with a Python
listener, Bob on the gRPC-Web transport implemented here with the standard library (as a watch
app would with its own HTTP stack). Standard library only.

    TAPLINE_BINDINGS=target/bindings/python TAPLINE_SERVER_BIN=target/debug/tapline-server \
        python3 mobile-core/tests/python/test_bindings.py
"""

import asyncio
import http.client
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.environ.get("TAPLINE_BINDINGS", "target/bindings/python"))
import tapline_core as tc  # noqa: E402

PATIENCE = 15.0


class Server:
    """tapline-server on an ephemeral port with a temporary SQLite database."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tapline-py-")
        binary = os.environ.get("TAPLINE_SERVER_BIN", "target/debug/tapline-server")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--database-url", f"sqlite://{self.dir}/tapline.db", "--log-format", "json"],
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        self.url = None
        while self.url is None:
            line = self.proc.stderr.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError("tapline-server did not start")
            fields = json.loads(line).get("fields", {})
            if "listen" in fields:
                self.url = "http://" + fields["listen"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=15)
        shutil.rmtree(self.dir, ignore_errors=True)


class QueueListener(tc.EventListener):
    """Puts every event on a queue; can be told to fail."""

    def __init__(self, fail=False):
        self.events = queue.Queue()
        self.states = queue.Queue()
        self.fail = fail

    def on_event(self, event):
        self.events.put(event)
        if self.fail:
            raise tc.TaplineError.Internal("the app's listener failed")

    def on_connection_state(self, state):
        self.states.put(state)

    def wait_for(self, predicate):
        deadline = time.monotonic() + PATIENCE
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if predicate(event):
                return event

    def next_tap(self):
        return self.wait_for(lambda e: e.is_tap_received()).tap


class WebTransport(tc.HttpTransport):
    """gRPC-Web through http.client: what a watch app does with URLSession or OkHttp."""

    def __init__(self):
        self.calls = 0

    def send(self, request):
        self.calls += 1
        url = urllib.parse.urlsplit(request.url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            headers = {h.name: h.value for h in request.headers}
            conn.request(request.method, url.path, body=bytes(request.body), headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            headers = [tc.HttpHeader(name=k, value=v) for k, v in resp.getheaders() if k.lower() != "transfer-encoding"]
            return tc.HttpResponse(status=resp.status, headers=headers, body=body)
        except OSError as e:
            raise tc.TaplineError.Network(str(e))
        finally:
            conn.close()


def config(server, kind, platform):
    return tc.ClientConfig(
        server_url=server.url,
        data_dir=tempfile.mkdtemp(prefix="tapline-py-core-"),
        device_kind=kind,
        platform=platform,
        device_name="python test",
        poll_interval_ms=100,
    )


class BindingsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_partners_exchange_taps_over_both_transports(self):
        async def scenario():
            alice = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.ANDROID))
            web = WebTransport()
            bob = tc.TaplineClient.with_http_transport(config(self.server, tc.DeviceKind.WATCH, tc.Platform.WATCHOS), web)
            await alice.create_account("Alice", "Europe/Paris")
            account = await bob.create_account("Bob", "Pacific/Kiritimati")
            self.assertEqual(account.time_zone, "Pacific/Kiritimati")
            code = await alice.create_invite()
            couple = await bob.accept_invite(code.code)
            self.assertEqual(couple.partner.display_name, "Alice")

            alice_events, bob_events = QueueListener(), QueueListener()
            alice_sub = alice.subscribe(alice_events)
            bob_sub = bob.subscribe(bob_events)
            try:
                await exchange(alice, bob, alice_events, bob_events, web)
            finally:
                alice_sub.cancel()
                bob_sub.cancel()
            self.assertFalse(bob_sub.is_active())

        async def exchange(alice, bob, alice_events, bob_events, web):
            alice_events.wait_for(lambda e: e.is_caught_up())
            bob_events.wait_for(lambda e: e.is_caught_up())

            # Alice -> Bob (native stream to gRPC-Web polling).
            queued = alice.send_tap(tc.TapKind.HEARTBEAT, "from python", None)
            self.assertTrue(queued.state.is_queued())
            tap = bob_events.next_tap()
            self.assertEqual(tap.kind, tc.TapKind.HEARTBEAT)
            self.assertEqual(tap.note, "from python")
            # Bob's core reported it delivered on its own, over gRPC-Web.
            alice_events.wait_for(lambda e: e.is_tap_state_changed() and e.tap.state.is_delivered())

            # Bob -> Alice with a custom rhythm.
            rhythm = tc.rhythm_from_taps([0, 200, 350, 800])
            bob.send_tap(tc.TapKind.CUSTOM, None, rhythm)
            got = alice_events.next_tap()
            self.assertEqual(got.kind, tc.TapKind.CUSTOM)
            self.assertEqual(got.rhythm, rhythm)
            self.assertGreater(web.calls, 3)

            glance = bob.glance()
            self.assertEqual(glance.partner_name, "Alice")
            self.assertEqual(glance.last_tap.note, "from python")

        asyncio.run(scenario())

    def test_errors_come_back_typed(self):
        async def scenario():
            client = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.IOS))
            with self.assertRaises(tc.TaplineError.Unauthenticated):
                client.send_tap(tc.TapKind.TAP, None, None)
            with self.assertRaises(tc.TaplineError.InvalidInput) as bad:
                await client.create_account("Sam", "Mars/Olympus")
            self.assertIn("time_zone", str(bad.exception))
            await client.create_account("Sam", "Europe/London")
            with self.assertRaises(tc.TaplineError.InvalidInput):
                client.send_tap(tc.TapKind.TAP, "x" * 81, None)
            with self.assertRaises(tc.TaplineError.NotFound):
                await client.accept_invite("ZZZZZZZZ")
            # A refusal says why in a code the app can act on, not only in words.
            with self.assertRaises(tc.TaplineError.Refused) as refused:
                await client.accept_invite((await client.create_invite()).code)
            self.assertEqual(refused.exception.code, tc.RefusalCode.OWN_INVITE)
            with self.assertRaises(tc.TaplineError.NotPaired):
                await client.unpair()

        asyncio.run(scenario())

    def test_a_signed_out_device_sees_its_tap_refused_and_starts_over(self):
        async def scenario():
            phone = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.ANDROID))
            watch = tc.TaplineClient(config(self.server, tc.DeviceKind.WATCH, tc.Platform.WEAR_OS))
            await phone.create_account("Alex", "UTC")
            me = await watch.redeem_link_code((await phone.create_link_code()).code)
            partner = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.IOS))
            await partner.create_account("Sam", "UTC")
            await partner.accept_invite((await phone.create_invite()).code)
            await phone.revoke_device(me.device_id)

            tap = watch.send_tap(tc.TapKind.TAP, "still there?", None)
            report = await watch.flush_outbox()
            self.assertEqual((report.sent_taps, report.unsent), (0, 0))
            state = watch.local_tap(tap.client_tap_id).state
            self.assertTrue(state.is_refused())
            self.assertEqual(state.code, tc.RefusalCode.SIGNED_OUT)
            self.assertTrue(watch.account().signed_out)
            watch.forget_account()
            self.assertIsNone(watch.account())
            again = await watch.redeem_link_code((await phone.create_link_code()).code)
            self.assertFalse(again.signed_out)

        asyncio.run(scenario())

    def test_export_and_deletion_over_grpc_web(self):
        async def scenario():
            web = WebTransport()
            sam = tc.TaplineClient.with_http_transport(config(self.server, tc.DeviceKind.PHONE, tc.Platform.ANDROID), web)
            kim = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.IOS))
            await sam.create_account("Sam", "Asia/Tokyo")
            await kim.create_account("Kim", "UTC")
            await kim.accept_invite((await sam.create_invite()).code)
            sam.send_tap(tc.TapKind.HUG, "export me", None)
            await sam.flush_outbox()
            doc = json.loads(await sam.export_my_data())
            self.assertEqual(doc["format"], "tapline.export.v1")
            self.assertEqual(doc["account"]["time_zone"], "Asia/Tokyo")
            self.assertEqual([t["note"] for t in doc["taps"]], ["export me"])
            with self.assertRaises(tc.TaplineError.InvalidInput):
                await sam.delete_account("no")
            await sam.delete_account("delete my account")
            self.assertIsNone(sam.account())
            events = await kim.sync_now()
            ended = [e for e in events if e.is_unpaired()]
            self.assertEqual(len(ended), 1)
            self.assertTrue(ended[0].partner_deleted)

        asyncio.run(scenario())

    def test_together_time_and_questions_through_the_bindings(self):
        async def scenario():
            sam = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.IOS))
            kim = tc.TaplineClient(config(self.server, tc.DeviceKind.WATCH, tc.Platform.ANDROID))
            await sam.create_account("Sam", "Europe/Paris")
            await kim.create_account("Kim", "America/New_York")
            await kim.accept_invite((await sam.create_invite()).code)

            proposed = await sam.start_together(45)
            self.assertTrue(proposed.started_by_me)
            self.assertFalse(proposed.in_force)
            events = await kim.sync_now()
            offers = [e for e in events if e.is_together_updated()]
            self.assertEqual(offers[0].change, tc.TogetherChange.PROPOSED)
            self.assertTrue(kim.glance().together.awaits_my_confirmation)
            confirmed = await kim.confirm_together(proposed.together_id)
            self.assertTrue(confirmed.in_force)
            with self.assertRaises(tc.TaplineError.Refused) as refused:
                await sam.start_together(None)
            self.assertEqual(refused.exception.code, tc.RefusalCode.TOGETHER_ALREADY)
            ended = await kim.end_together()
            self.assertEqual(ended.end, tc.TogetherEnd.BY_HAND)

            first = (await sam.questions()).progress.current
            self.assertEqual((first.number, first.set_name), (1, "Warm-up"))
            waiting = await sam.answer_question(1, "a slow breakfast")
            self.assertIsNone(waiting.revealed)
            both = await kim.answer_question(1, "music while cooking")
            self.assertEqual(both.revealed.partner_answer, "a slow breakfast")
            await sam.sync_now()
            glance = sam.glance()
            self.assertEqual(glance.questions_revealed, 1)
            self.assertEqual(glance.question_waiting.number, 2)
            with self.assertRaises(tc.TaplineError.Refused) as refused:
                await sam.answer_question(5, "too soon")
            self.assertEqual(refused.exception.code, tc.RefusalCode.QUESTION_LOCKED)

        asyncio.run(scenario())

    def test_the_reconnect_plan_through_the_bindings(self):
        async def scenario():
            sam = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.IOS))
            kim = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.ANDROID))
            await sam.create_account("Sam", "Europe/Paris")
            await kim.create_account("Kim", "Asia/Tokyo")
            await kim.accept_invite((await sam.create_invite()).code)
            self.assertIsNone(await sam.get_reconnect())

            plan = await sam.start_reconnect("20:30")
            self.assertEqual(plan.state, tc.ReconnectState.PROPOSED)
            self.assertEqual((plan.local_time, len(plan.steps)), ("20:30", 7))
            self.assertIsNone(plan.my_next_step_at)
            events = await kim.sync_now()
            updates = [e for e in events if e.is_reconnect_updated()]
            self.assertEqual(updates[0].change, tc.ReconnectChange.PROPOSED)
            glance = kim.glance()
            self.assertTrue(glance.reconnect_awaits_me)
            self.assertFalse(glance.reconnect_suggested, "a plan is proposed")
            with self.assertRaises(tc.TaplineError.Refused) as refused:
                await sam.start_reconnect(None)
            self.assertEqual(refused.exception.code, tc.RefusalCode.RECONNECT_ALREADY)

            running = await kim.accept_reconnect(plan.plan_id)
            self.assertEqual(running.state, tc.ReconnectState.RUNNING)
            self.assertIsNotNone(running.my_next_step_at)
            self.assertEqual([s.number for s in running.steps], list(range(1, 8)))
            with self.assertRaises(tc.TaplineError.Refused) as refused:
                await kim.mark_reconnect_step(plan.plan_id, 1)
            self.assertEqual(refused.exception.code, tc.RefusalCode.RECONNECT_STEP_NOT_YET)
            self.assertIsNone(kim.glance().reconnect_step, "no step has come yet")

            paused = await sam.pause_reconnect(plan.plan_id, True)
            self.assertTrue(paused.paused_by_me)
            ended = await kim.end_reconnect(plan.plan_id)
            self.assertEqual(ended.state, tc.ReconnectState.ENDED)
            self.assertTrue(ended.ended_by_me)
            with self.assertRaises(tc.TaplineError.Refused) as refused:
                await kim.accept_reconnect(plan.plan_id)
            self.assertEqual(refused.exception.code, tc.RefusalCode.RECONNECT_ENDED)
            step = tc.reconnect_step_pattern()
            self.assertEqual(tc.normalize(step), step, "within the bounds as it is")

        asyncio.run(scenario())

    def test_moments_and_the_recap_through_the_bindings(self):
        async def scenario():
            alice = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.IOS))
            bob = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.ANDROID))
            await alice.create_account("Alice", "Europe/Paris")
            await bob.create_account("Bob", "Asia/Tokyo")
            await bob.accept_invite((await alice.create_invite()).code)

            sent = alice.send_tap(tc.TapKind.TAP, "thinking of you", None)
            await alice.flush_outbox()
            tap_id = alice.local_tap(sent.client_tap_id).tap_id
            self.assertIsNotNone(tap_id)
            await bob.sync_now()
            kept = await bob.keep_moment_tap(tap_id)
            moment = kept.moment
            self.assertFalse(kept.already_kept)
            self.assertEqual((moment.text, moment.kind), ("thinking of you", tc.MomentKind.NOTE))
            self.assertTrue(moment.kept_by_me)
            self.assertFalse(moment.written_by_me)
            self.assertEqual(moment.source_id, tap_id)
            again = await bob.keep_moment_tap(tap_id)
            self.assertTrue(again.already_kept)
            self.assertEqual(again.moment.moment_id, moment.moment_id)
            with self.assertRaises(tc.TaplineError.Refused) as refused:
                await alice.keep_moment_tap(tap_id)
            self.assertEqual(refused.exception.code, tc.RefusalCode.NOTHING_TO_KEEP)

            events = await alice.sync_now()
            told = [e for e in events if e.is_moment_kept()]
            self.assertEqual(len(told), 1, "one event, though Bob kept it twice")
            self.assertFalse(told[0].forgotten)
            self.assertEqual(told[0].moment.moment_id, moment.moment_id)
            self.assertTrue(told[0].moment.written_by_me)
            for who in (alice, bob):
                page = await who.list_moments(None)
                self.assertEqual([m.moment_id for m in page.moments], [moment.moment_id])
                self.assertIsNone(page.next_page_token)

            checkin = await bob.ask_partner(None, "mood-01")
            bob.answer_checkin(checkin.checkin_id, tc.CheckinAnswer.SCALE(4))
            await bob.flush_outbox()
            await alice.sync_now()
            alice.answer_checkin(checkin.checkin_id, tc.CheckinAnswer.SCALE(2))
            report = await alice.flush_outbox()
            self.assertEqual(report.unsent, 0)
            recap = await bob.get_recap(None)
            self.assertEqual(len(recap.dates), 7)
            self.assertEqual(recap.dates[-1], recap.last_date)
            self.assertEqual(recap.taps_received[-1], 1)
            self.assertEqual(recap.days[-1].taps_received, 1)
            self.assertEqual((recap.my_mood[-1], recap.partner_mood[-1]), (4, 2))
            self.assertEqual([m.moment_id for m in recap.moments], [moment.moment_id])

            self.assertFalse((await bob.get_recap_schedule()).enabled, "off until chosen")
            chosen = await bob.set_recap_schedule(True, 7, "19:00")
            self.assertEqual((chosen.enabled, chosen.weekday, chosen.local_time), (True, 7, "19:00"))
            self.assertIsNotNone(chosen.next_at)
            self.assertEqual(await bob.get_recap_schedule(), chosen)
            off = await alice.get_recap_schedule()
            self.assertEqual((off.enabled, off.next_at), (False, None), "Alice chose none")

            await bob.forget_moment(moment.moment_id)
            self.assertEqual((await alice.list_moments(None)).moments, [])
            gone = [e for e in await alice.sync_now() if e.is_moment_kept()]
            self.assertEqual([(e.moment.moment_id, e.forgotten) for e in gone], [(moment.moment_id, True)])

        asyncio.run(scenario())

    def test_a_failing_listener_keeps_receiving(self):
        async def scenario():
            alice = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.IOS))
            bob = tc.TaplineClient(config(self.server, tc.DeviceKind.PHONE, tc.Platform.IOS))
            await alice.create_account("Alice", "UTC")
            await bob.create_account("Bob", "UTC")
            await bob.accept_invite((await alice.create_invite()).code)
            listener = QueueListener(fail=True)
            sub = bob.subscribe(listener)
            try:
                for note in ["a", "b", "c"]:
                    alice.send_tap(tc.TapKind.TAP, note, None)
                notes = [listener.next_tap().note for _ in range(3)]
                self.assertEqual(notes, ["a", "b", "c"])
            finally:
                sub.cancel()

        asyncio.run(scenario())

    def test_haptics_map_to_both_platforms(self):
        pattern = tc.pattern_for(tc.TapKind.HEARTBEAT, None)
        wave = tc.android_waveform(pattern)
        self.assertEqual(len(wave.timings_ms), len(wave.amplitudes))
        self.assertEqual(tc.pattern_from_waveform(wave), pattern)
        events = tc.core_haptics_events(pattern)
        self.assertEqual(len(events), sum(1 for s in pattern.segments if s.intensity > 0))
        self.assertTrue(all(0.0 < e.intensity <= 1.0 for e in events))

    def test_haptics_each_platform_can_play(self):
        heartbeat = tc.pattern_for(tc.TapKind.HEARTBEAT, None)
        # Apple Watch: timed WKHapticTypes, never closer than the gap; the heartbeat keeps its
        # four beats, the first played strong.
        watch = tc.watch_rendering(heartbeat)
        self.assertEqual(watch.min_gap_ms, 100)
        offsets = [s.offset_ms for s in watch.steps]
        self.assertEqual(len(offsets), 4)
        self.assertTrue(all(b - a >= watch.min_gap_ms for a, b in zip(offsets, offsets[1:])))
        self.assertEqual(watch.steps[0].haptic, tc.WatchHaptic.NOTIFICATION)
        self.assertEqual(watch.fidelity, tc.HapticFidelity.APPROXIMATE)
        # A kiss's two touches are too close together for a watch: simplified.
        kiss = tc.pattern_for(tc.TapKind.KISS, None)
        self.assertEqual(tc.haptic_fidelity(kiss, tc.HapticPlatform.APPLE_WATCH), tc.HapticFidelity.SIMPLIFIED)
        # Android without amplitude control: only on or off, as long as the pattern.
        on_off = tc.android_on_off_rendering(heartbeat)
        self.assertEqual(set(on_off.waveform.amplitudes), {0, 255})
        self.assertEqual(sum(on_off.waveform.timings_ms), sum(s.duration_ms for s in heartbeat.segments))
        self.assertEqual(on_off.fidelity, tc.HapticFidelity.APPROXIMATE)
        rendered = tc.render_for(tc.HapticPlatform.ANDROID_ON_OFF, heartbeat)
        self.assertTrue(rendered.is_android())
        self.assertEqual(rendered.rendering, on_off)
        self.assertEqual(tc.haptic_fidelity(heartbeat, tc.HapticPlatform.I_PHONE), tc.HapticFidelity.EXACT)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print(f"python bindings: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
