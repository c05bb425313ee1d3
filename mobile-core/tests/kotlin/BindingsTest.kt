// The generated Kotlin bindings of the mobile core, driving a real tapline-server: two
// partners exchange a tap, one of them listening with a Kotlin listener. Run by scripts/test.

import app.tapline.core.*
import java.io.File
import java.nio.file.Files
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking

class QueueListener : EventListener {
    val events = LinkedBlockingQueue<ClientEvent>()
    override fun onEvent(event: ClientEvent) { events.put(event) }
    override fun onConnectionState(state: ConnectionState) {}

    fun waitFor(predicate: (ClientEvent) -> Boolean): ClientEvent {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15)
        while (true) {
            val left = deadline - System.nanoTime()
            val e = events.poll(maxOf(left, 1L), TimeUnit.NANOSECONDS) ?: error("no matching event within 15 s")
            if (predicate(e)) return e
        }
    }
}

fun startServer(): Pair<Process, String> {
    val dir = Files.createTempDirectory("tapline-kt-").toFile()
    val bin = System.getenv("TAPLINE_SERVER_BIN") ?: "target/debug/tapline-server"
    val proc = ProcessBuilder(bin, "--listen", "127.0.0.1:0", "--database-url", "sqlite://${dir}/tapline.db", "--log-format", "json").start()
    val reader = proc.errorStream.bufferedReader()
    val listen = Regex("\"listen\":\"([^\"]+)\"")
    while (true) {
        val line = reader.readLine() ?: error("tapline-server did not start")
        val m = listen.find(line) ?: continue
        Thread { try { reader.forEachLine { } } catch (_: java.io.IOException) {} }.apply { isDaemon = true }.start()
        return proc to "http://${m.groupValues[1]}"
    }
}

fun config(url: String, kind: DeviceKind) = ClientConfig(
    serverUrl = url,
    dataDir = Files.createTempDirectory("tapline-kt-core-").toString(),
    deviceKind = kind,
    platform = if (kind == DeviceKind.WATCH) Platform.WEAR_OS else Platform.ANDROID,
    deviceName = "kotlin test",
    pollIntervalMs = 100u,
)

fun check(ok: Boolean, what: String) { if (!ok) throw AssertionError(what) }

fun main() {
    val (server, url) = startServer()
    var passed = 0
    var failed = 0
    fun test(name: String, body: () -> Unit) {
        try { body(); passed++; println("ok   $name") } catch (e: Throwable) { failed++; println("FAIL $name: $e") }
    }
    try {
        test("partners exchange a tap through the Kotlin bindings") {
            runBlocking {
                val alice = TaplineClient(config(url, DeviceKind.PHONE))
                val bob = TaplineClient(config(url, DeviceKind.WATCH))
                alice.createAccount("Alice", "Europe/Paris")
                bob.createAccount("Bob", "America/Sao_Paulo")
                val couple = bob.acceptInvite(alice.createInvite().code)
                check(couple.partner.displayName == "Alice", "partner name")
                val listener = QueueListener()
                val sub = bob.subscribe(listener)
                try {
                    listener.waitFor { it is ClientEvent.CaughtUp }
                    val queued = alice.sendTap(TapKind.HUG, "from kotlin", null)
                    check(queued.state is TapState.Queued, "queued first")
                    val got = listener.waitFor { it is ClientEvent.TapReceived } as ClientEvent.TapReceived
                    check(got.tap.kind == TapKind.HUG && got.tap.note == "from kotlin", "tap received: $got")
                    check(bob.glance().partnerName == "Alice", "glance")
                } finally {
                    sub.cancel()
                }
            }
        }
        test("errors are typed exceptions") {
            runBlocking {
                val c = TaplineClient(config(url, DeviceKind.PHONE))
                try { c.createAccount("Sam", "Nowhere/Town"); error("accepted a bad zone") }
                catch (e: TaplineException.InvalidInput) { check(e.reason.contains("time_zone"), e.reason) }
                c.createAccount("Sam", "Europe/London")
                val invite = c.createInvite()
                try { c.acceptInvite(invite.code); error("accepted its own invite") }
                catch (e: TaplineException.Refused) { check(e.code == RefusalCode.OWN_INVITE, e.code.toString()) }
                try { c.unpair(); error("unpaired without a partner") }
                catch (_: TaplineException.NotPaired) {}
            }
        }
        test("haptics give an Android waveform") {
            val w = androidWaveform(patternFor(TapKind.HEARTBEAT, null))
            check(w.timingsMs.size == w.amplitudes.size && w.amplitudes.all { it in 0..255 }, "waveform")
            check(patternFromWaveform(w) == patternFor(TapKind.HEARTBEAT, null), "round trip")
        }
        test("haptics render for a watch and for a vibrator without amplitude control") {
            val heartbeat = patternFor(TapKind.HEARTBEAT, null)
            val watch = watchRendering(heartbeat)
            val offsets = watch.steps.map { it.offsetMs }
            check(offsets.size == 4, "four beats: $offsets")
            check(offsets.zipWithNext().all { (a, b) -> b - a >= watch.minGapMs }, "gap: $offsets")
            check(watch.steps[0].haptic == WatchHaptic.NOTIFICATION, "strong first beat")
            check(watch.fidelity == HapticFidelity.APPROXIMATE, "watch fidelity ${watch.fidelity}")
            val onOff = androidOnOffRendering(heartbeat)
            check(onOff.waveform.amplitudes.toSet() == setOf(0, 255), "on/off only")
            check(onOff.waveform.timingsMs.sum() == heartbeat.segments.sumOf { it.durationMs.toLong() }, "length")
            check(onOff.fidelity == HapticFidelity.APPROXIMATE, "on/off fidelity")
            check(hapticFidelity(patternFor(TapKind.KISS, null), HapticPlatform.APPLE_WATCH) == HapticFidelity.SIMPLIFIED, "kiss")
        }
    } finally {
        server.destroy()
        server.waitFor(15, TimeUnit.SECONDS)
    }
    println("kotlin bindings: $passed passed, $failed failed")
    System.exit(if (failed == 0) 0 else 1)
}
