// Starts a single OpenSearch node from the jars on the class path (no distribution, no plugin
// folders). Used by scripts/services.sh; compiled with javac into .cache at the first `up`.
//
//   java -cp 'libs/*:classes' Launcher <path.home> <config dir>
//
// <config dir> holds opensearch.yml and log4j2.properties. The public Node constructor only loads
// plugins from <path.home>/plugins and modules; the protected one also takes plugin classes found
// on the class path, which is how the HTTP layer (transport-netty4, a module in the distribution)
// gets in here. The distribution's Bootstrap (security manager, bootstrap checks, JarHell) is not
// used: this node is for development and tests on 127.0.0.1 only.

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LoggerContext;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

public final class Launcher {

    /** A Node that also loads plugin classes from the class path. */
    static final class ClasspathPluginNode extends Node {
        ClasspathPluginNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Launcher <path.home> <config dir>");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Path config = Paths.get(args[1]).toAbsolutePath();

        Settings initial = Settings.builder().put("path.home", home.toString()).build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
            initial, Map.of(), config, () -> "ferroflow-1");
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
        LogConfigurator.configure(env);

        final Node node = new ClasspathPluginNode(env, List.of(Netty4Plugin.class));
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                if (!node.awaitClose(20, TimeUnit.SECONDS)) {
                    System.err.println("opensearch: node did not close within 20 s");
                }
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
                LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
                ctx.stop();
            }
        }, "ferroflow-opensearch-shutdown"));

        try {
            node.start();
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1);
        }
        System.out.println("ferroflow launcher: node started");
        stopped.await();
    }
}
