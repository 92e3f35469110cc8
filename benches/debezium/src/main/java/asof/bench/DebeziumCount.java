package asof.bench;

import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.format.Json;

/**
 * Runs Debezium's PostgreSQL connector in the embedded engine, with events
 * serialized to JSON as Kafka Connect's JsonConverter writes them, and a
 * consumer that only counts them; exits once it has seen the expected
 * number of change events.
 *
 * Usage: DebeziumCount HOST PORT USER DBNAME SLOT PUBLICATION SNAPSHOT_MODE EXPECTED [TIMEOUT_S]
 */
public final class DebeziumCount {
    public static void main(String[] args) throws Exception {
        if (args.length < 8) {
            System.err.println("usage: DebeziumCount HOST PORT USER DBNAME SLOT PUBLICATION SNAPSHOT_MODE EXPECTED [TIMEOUT_S]");
            System.exit(2);
        }
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        long expected = Long.parseLong(args[7]);
        long timeoutS = args.length > 8 ? Long.parseLong(args[8]) : 1800;
        Properties p = new Properties();
        p.setProperty("name", "asof-bench");
        p.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        p.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        p.setProperty("offset.flush.interval.ms", "60000");
        p.setProperty("database.hostname", args[0]);
        p.setProperty("database.port", args[1]);
        p.setProperty("database.user", args[2]);
        p.setProperty("database.password", "unused");
        p.setProperty("database.dbname", args[3]);
        p.setProperty("topic.prefix", "bench");
        p.setProperty("plugin.name", "pgoutput");
        p.setProperty("slot.name", args[4]);
        p.setProperty("publication.name", args[5]);
        p.setProperty("publication.autocreate.mode", "disabled");
        p.setProperty("snapshot.mode", args[6]);
        p.setProperty("tombstones.on.delete", "false");
        // Larger batches than the defaults (2048 / 8192): Debezium at its best.
        p.setProperty("max.batch.size", "8192");
        p.setProperty("max.queue.size", "32768");
        p.setProperty("key.converter.schemas.enable", "false");
        p.setProperty("value.converter.schemas.enable", "false");

        AtomicLong seen = new AtomicLong();
        CountDownLatch done = new CountDownLatch(1);
        long started = System.nanoTime();
        DebeziumEngine<ChangeEvent<String, String>> engine = DebeziumEngine.create(Json.class)
                .using(p)
                .notifying((records, committer) -> {
                    for (ChangeEvent<String, String> r : records) {
                        if (r.value() != null && seen.incrementAndGet() == expected) {
                            done.countDown();
                        }
                        committer.markProcessed(r);
                    }
                    committer.markBatchFinished();
                })
                .using((success, message, error) -> {
                    if (!success) {
                        System.err.println("debezium stopped: " + message + (error == null ? "" : ": " + error));
                    }
                    done.countDown();
                })
                .build();
        ExecutorService executor = Executors.newSingleThreadExecutor();
        executor.execute(engine);
        boolean finished = done.await(timeoutS, TimeUnit.SECONDS);
        double secs = (System.nanoTime() - started) / 1e9;
        System.err.printf("debezium: %d change events in %.3f s%n", seen.get(), secs);
        engine.close();
        executor.shutdownNow();
        System.exit(finished && seen.get() >= expected ? 0 : 1);
    }
}
