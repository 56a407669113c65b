// Small Kafka admin helper for scripts/services.sh, built on the Admin client from the broker's own
// jars (compiled with javac into .cache at the first `up`). One JVM does the readiness wait and
// the topic set-up, instead of one kafka-topics JVM per topic.
//
//   KafkaAdmin ready  <bootstrap> <timeout-s>
//       waits until the cluster answers DescribeCluster; exit 0 when it does, 1 on time-out.
//   KafkaAdmin ensure <bootstrap> <timeout-s> <partitions> <retention.ms> <topic>...
//       waits as `ready`, then creates each missing topic (replication factor 1,
//       retention.ms as given), raises the partition count of an existing topic that has fewer
//       than asked (never lowers it: Kafka cannot), sets retention.ms where it differs, and prints
//       one line per topic. An argument --scram=USER:PASSWORD among the topics instead creates
//       (or updates) that SCRAM-SHA-512 user, for the broker's SASL_SSL listener.
//       --replication-factor=N (default 1) creates new topics with N replicas: it first waits
//       (within the timeout) for N live brokers and fails, naming both numbers, when fewer are
//       up; an existing topic with another replication factor gets a warning (not changed).
//       --min-insync=N sets min.insync.replicas on the topics (checked: 1 <= N <= RF).
//   KafkaAdmin list   <bootstrap>
//       prints the topics (not internal ones) with their partition counts.

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;

public final class KafkaAdmin {

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            usage();
        }
        String cmd = args[0];
        String bootstrap = args[1];
        switch (cmd) {
            case "ready": {
                if (args.length != 3) usage();
                try (Admin admin = admin(bootstrap)) {
                    System.exit(waitReady(admin, Integer.parseInt(args[2])) ? 0 : 1);
                }
                break;
            }
            case "ensure": {
                if (args.length < 6) usage();
                int timeout = Integer.parseInt(args[2]);
                int partitions = Integer.parseInt(args[3]);
                String retention = args[4];
                List<String> topics = new ArrayList<>();
                List<String> scram = new ArrayList<>();
                int rf = 1;
                String minIsr = null;
                for (String a : List.of(args).subList(5, args.length)) {
                    if (a.startsWith("--scram=")) scram.add(a.substring("--scram=".length()));
                    else if (a.startsWith("--replication-factor="))
                        rf = Integer.parseInt(a.substring("--replication-factor=".length()));
                    else if (a.startsWith("--min-insync=")) minIsr = a.substring("--min-insync=".length());
                    else topics.add(a);
                }
                if (rf < 1) {
                    System.err.println("error: replication factor " + rf + " must be at least 1");
                    System.exit(2);
                }
                if (minIsr != null && (Integer.parseInt(minIsr) < 1 || Integer.parseInt(minIsr) > rf)) {
                    System.err.println("error: min.insync.replicas " + minIsr
                        + " must be between 1 and the replication factor " + rf);
                    System.exit(2);
                }
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeout);
                try (Admin admin = admin(bootstrap)) {
                    if (!waitReady(admin, timeout)) System.exit(1);
                    if (!waitBrokers(admin, rf, deadline, bootstrap)) System.exit(3);
                    ensure(admin, partitions, retention, topics, rf, minIsr);
                    for (String s : scram) scramUser(admin, s);
                }
                break;
            }
            case "list": {
                try (Admin admin = admin(bootstrap)) {
                    Set<String> names = new TreeSet<>(admin.listTopics().names().get(30, TimeUnit.SECONDS));
                    Map<String, TopicDescription> d =
                        admin.describeTopics(names).allTopicNames().get(30, TimeUnit.SECONDS);
                    for (String n : names) {
                        System.out.println(n + " partitions=" + d.get(n).partitions().size());
                    }
                }
                break;
            }
            default:
                usage();
        }
        System.exit(0);
    }

    private static void usage() {
        System.err.println("usage: KafkaAdmin ready <bootstrap> <timeout-s>\n"
            + "       KafkaAdmin ensure <bootstrap> <timeout-s> <partitions> <retention.ms>"
            + " [--replication-factor=N] [--min-insync=N] [--scram=USER:PASSWORD] <topic>...\n"
            + "       KafkaAdmin list <bootstrap>");
        System.exit(2);
    }

    private static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "1000");
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "ferroflow-services");
        return Admin.create(p);
    }

    /** Bounded in time: gives up after timeoutSec seconds. */
    private static boolean waitReady(Admin admin, int timeoutSec) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSec);
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                var cluster = admin.describeCluster(new DescribeClusterOptions().timeoutMs(3000));
                int nodes = cluster.nodes().get(5, TimeUnit.SECONDS).size();
                String id = cluster.clusterId().get(5, TimeUnit.SECONDS);
                if (nodes > 0) {
                    System.out.println("kafka ready: cluster " + id + ", " + nodes + " broker(s)");
                    return true;
                }
                last = "no brokers yet";
            } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                last = String.valueOf(e.getCause() != null ? e.getCause() : e);
            }
            Thread.sleep(500);
        }
        System.err.println("kafka not ready after " + timeoutSec + " s: " + last);
        return false;
    }

    /**
     * Waits until at least `rf` brokers are live (until `deadline`); when fewer are, prints an
     * error naming both numbers and returns false: a topic with more replicas than live brokers
     * cannot be created (and would not meet acks=all).
     */
    private static boolean waitBrokers(Admin admin, int rf, long deadline, String bootstrap)
            throws InterruptedException {
        int live = 0;
        while (true) {
            try {
                live = admin.describeCluster(new DescribeClusterOptions().timeoutMs(3000))
                    .nodes().get(5, TimeUnit.SECONDS).size();
            } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                // counted as no answer this round
            }
            if (live >= rf) return true;
            if (System.nanoTime() >= deadline) break;
            Thread.sleep(500);
        }
        System.err.println("error: replication factor " + rf + " is larger than the " + live
            + " live broker(s) of the cluster at " + bootstrap
            + "; start more brokers or lower the replication factor");
        return false;
    }

    /** Creates or updates SCRAM-SHA-512 user USER:PASSWORD (idempotent). */
    private static void scramUser(Admin admin, String spec) throws Exception {
        int colon = spec.indexOf(':');
        if (colon <= 0) {
            System.err.println("--scram wants USER:PASSWORD");
            System.exit(2);
        }
        String user = spec.substring(0, colon);
        String password = spec.substring(colon + 1);
        admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(user,
                new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), password)))
            .all().get(30, TimeUnit.SECONDS);
        System.out.println("scram user " + user + ": SCRAM-SHA-512 credential set");
    }

    private static void ensure(Admin admin, int partitions, String retention, List<String> topics,
            int rf, String minIsr) throws Exception {
        Map<String, String> cfg = new HashMap<>();
        cfg.put("retention.ms", retention);
        if (minIsr != null) cfg.put("min.insync.replicas", minIsr);
        Set<String> existing = admin.listTopics().names().get(30, TimeUnit.SECONDS);
        List<NewTopic> create = new ArrayList<>();
        for (String t : topics) {
            if (!existing.contains(t)) {
                create.add(new NewTopic(t, partitions, (short) rf).configs(cfg));
            }
        }
        if (!create.isEmpty()) {
            var result = admin.createTopics(create);
            for (NewTopic nt : create) {
                try {
                    result.values().get(nt.name()).get(30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) throw e;
                }
            }
        }

        // Existing topics: raise partitions, align retention.ms.
        Map<String, TopicDescription> desc =
            admin.describeTopics(topics).allTopicNames().get(30, TimeUnit.SECONDS);
        Map<String, NewPartitions> grow = new HashMap<>();
        for (String t : topics) {
            int have = desc.get(t).partitions().size();
            int replicas = desc.get(t).partitions().get(0).replicas().size();
            if (replicas != rf) {
                System.err.println("warning: topic " + t + " has replication factor " + replicas
                    + ", not the " + rf + " asked; services.sh does not change it");
            }
            if (have < partitions) {
                grow.put(t, NewPartitions.increaseTo(partitions));
            } else if (have > partitions) {
                System.err.println("warning: topic " + t + " has " + have + " partitions, more than the "
                    + partitions + " asked; Kafka cannot lower it (`services.sh down` then delete "
                    + ".cache/services/kafka/data to start over)");
            }
        }
        if (!grow.isEmpty()) {
            admin.createPartitions(grow).all().get(30, TimeUnit.SECONDS);
        }

        Collection<ConfigResource> res = new ArrayList<>();
        for (String t : topics) res.add(new ConfigResource(ConfigResource.Type.TOPIC, t));
        Map<ConfigResource, Config> cfgs = admin.describeConfigs(res).all().get(30, TimeUnit.SECONDS);
        Map<ConfigResource, Collection<AlterConfigOp>> alter = new HashMap<>();
        for (var e : cfgs.entrySet()) {
            List<AlterConfigOp> ops = new ArrayList<>();
            for (var kv : cfg.entrySet()) {
                ConfigEntry r = e.getValue().get(kv.getKey());
                if (r == null || !kv.getValue().equals(r.value())) {
                    ops.add(new AlterConfigOp(new ConfigEntry(kv.getKey(), kv.getValue()),
                        AlterConfigOp.OpType.SET));
                }
            }
            if (!ops.isEmpty()) alter.put(e.getKey(), ops);
        }
        if (!alter.isEmpty()) {
            admin.incrementalAlterConfigs(alter).all().get(30, TimeUnit.SECONDS);
        }

        desc = admin.describeTopics(topics).allTopicNames().get(30, TimeUnit.SECONDS);
        for (String t : topics) {
            String how = create.stream().anyMatch(n -> n.name().equals(t)) ? "created"
                : grow.containsKey(t) ? "partitions raised" : "exists";
            System.out.println("topic " + t + ": partitions=" + desc.get(t).partitions().size()
                + " replication.factor=" + desc.get(t).partitions().get(0).replicas().size()
                + (minIsr != null ? " min.insync.replicas=" + minIsr : "")
                + " retention.ms=" + retention + " (" + how + ")");
        }
    }
}
