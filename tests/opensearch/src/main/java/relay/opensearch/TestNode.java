package relay.opensearch;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.opensearch.common.settings.Settings;
import org.opensearch.core.common.transport.TransportAddress;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * One OpenSearch node in this JVM, for mde-relay's tests: single-node discovery, HTTP and
 * transport on 127.0.0.1, the Netty 4 transport as a classpath plugin (the way OpenSearch's own
 * integration tests start nodes). Not a production launcher: no security manager, no bootstrap
 * checks, no security plugin.
 *
 * <p>Arguments: {@code HOME URL_FILE [key=value ...]}. HOME holds data and logs; once the node
 * is started, its HTTP URL is written to URL_FILE. Each {@code key=value} is a node setting (as
 * {@code -E} would give it), e.g. {@code thread_pool.write.queue_size=2}. The node runs until
 * the JVM is told to stop (SIGTERM).
 */
public final class TestNode {
  /** The protected constructor takes classpath plugins (2.19: Collection of plugin classes). */
  static final class PluginNode extends Node {
    PluginNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
      super(env, plugins, true);
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: TestNode HOME URL_FILE [setting=value ...]");
      System.exit(2);
    }
    Path home = Paths.get(args[0]).toAbsolutePath();
    Path urlFile = Paths.get(args[1]).toAbsolutePath();
    Files.createDirectories(home.resolve("config"));
    Settings.Builder s =
        Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "mde-relay-test")
            .put("node.name", "mde-relay-test-node")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", "0")
            .put("transport.port", "0")
            // The test machine's disk is shared: never turn indices read-only for its fill.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", true);
    for (int i = 2; i < args.length; i++) {
      int eq = args[i].indexOf('=');
      if (eq <= 0) {
        System.err.println("not a setting (key=value): " + args[i]);
        System.exit(2);
      }
      s.put(args[i].substring(0, eq), args[i].substring(eq + 1));
    }
    Environment env =
        InternalSettingsPreparer.prepareEnvironment(
            s.build(), Collections.emptyMap(), home.resolve("config"), () -> "mde-relay-test-node");
    Node node = new PluginNode(env, List.of(Netty4Plugin.class));
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    node.close();
                  } catch (IOException e) {
                    e.printStackTrace();
                  }
                  stopped.countDown();
                },
                "mde-relay-test-node-stop"));
    node.start();
    TransportAddress http =
        node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress();
    String url = "http://" + http.getAddress() + ":" + http.getPort();
    Path tmp = urlFile.resolveSibling(urlFile.getFileName() + ".tmp");
    Files.write(tmp, (url + "\n").getBytes(StandardCharsets.UTF_8));
    Files.move(tmp, urlFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    System.out.println("mde-relay test node started: " + url);
    stopped.await();
  }
}
