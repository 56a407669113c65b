// Produces one record to partition 0 of a topic and reads partition 0 from the beginning until that
// record comes back (bounded: 20 s for the send, 30 s for the read). Used by
// scripts/services-smoke.sh against Tansu.
//
//   java -cp '.cache/maven/kafka-client/libs/*:.cache/maven/kafka-client/classes' \
//     ProduceConsume <bootstrap> <topic> <key> <value>
// exit 0 when the record was read back.

import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class ProduceConsume {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: ProduceConsume <bootstrap> <topic> <key> <value>");
            System.exit(2);
        }
        String bootstrap = args[0], topic = args[1], key = args[2], value = args[3];
        Map<String, Object> pc = Map.of(
            "bootstrap.servers", bootstrap,
            "key.serializer", StringSerializer.class.getName(),
            "value.serializer", StringSerializer.class.getName(),
            "request.timeout.ms", "10000",
            "delivery.timeout.ms", "20000");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pc)) {
            RecordMetadata m = p.send(new ProducerRecord<>(topic, 0, key, value)).get();
            System.out.println("produced " + m);
        }
        Map<String, Object> cc = Map.of(
            "bootstrap.servers", bootstrap,
            "key.deserializer", StringDeserializer.class.getName(),
            "value.deserializer", StringDeserializer.class.getName(),
            "enable.auto.commit", "false");
        TopicPartition tp = new TopicPartition(topic, 0);
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cc)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofSeconds(2))) {
                    if (key.equals(r.key()) && value.equals(r.value())) {
                        System.out.println("consumed " + tp + "@" + r.offset());
                        System.exit(0);
                    }
                }
            }
        }
        System.err.println("record not read back within 30 s");
        System.exit(1);
    }
}
