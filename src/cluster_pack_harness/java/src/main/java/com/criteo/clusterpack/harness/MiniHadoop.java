package com.criteo.clusterpack.harness;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.protocol.HdfsConstants;
import org.apache.hadoop.minikdc.MiniKdc;
import org.apache.hadoop.security.SecurityUtil;
import org.apache.hadoop.security.authentication.util.KerberosName;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.util.VersionInfo;
import org.apache.hadoop.yarn.api.records.NodeReport;
import org.apache.hadoop.yarn.api.records.NodeState;
import org.apache.hadoop.yarn.client.api.YarnClient;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;

/**
 * Runs a MiniDFSCluster (1 NameNode + 1 DataNode) and a MiniYARNCluster (1 RM + 1 NM) in one JVM,
 * bound to loopback, for the cluster-pack test harness.
 *
 * <p>Protocol with the Python side (cluster_pack_harness.hadoop):
 * <ul>
 *   <li>the working directory of the JVM is the harness hadoop dir (MiniYARNCluster writes ./target);</li>
 *   <li>after start it writes {@code <conf-dir>/{core,hdfs,yarn,mapred}-site.xml} and then, atomically,
 *       {@code <dir>/ready.json} with ports and addresses;</li>
 *   <li>it stops cleanly when {@code <dir>/stop} appears, when stdin reaches EOF (with
 *       {@code --exit-on-stdin-eof}), or on SIGTERM/SIGINT; it then writes {@code <dir>/stopped}.</li>
 * </ul>
 *
 * <p>System properties read: {@code harness.container.java.opts} (options put in
 * {@code JDK_JAVA_OPTIONS} of every container the NodeManager launches) and
 * {@code harness.container.ld.preload} (a library put in the containers' {@code LD_PRELOAD}).
 *
 * <p>With {@code --secure} it first starts a KDC (Hadoop's MiniKdc) on loopback, writes
 * {@code <dir>/kerberos/{krb5.conf,service.keytab,<user>.keytab}}, and runs HDFS and YARN with
 * Kerberos authentication, block access tokens and SASL data transfer protection
 * ({@code authentication}, non-privileged ports allowed with {@code ignore.secure.ports.for.testing}
 * as in Hadoop's own secure tests). All daemons share one JVM, hence one login user: they all
 * run as {@code hdfs/localhost} (the HTTP endpoints as {@code HTTP/localhost}).
 */
public final class MiniHadoop {

  private final File dir;
  private final File confDir;
  private final int nnPort;
  private final int nmMemoryMb;
  private final int nmVcores;
  private final boolean startYarn;
  private final boolean exitOnStdinEof;
  private final String user;
  private final boolean secure;
  private final List<String> secureUsers = new ArrayList<>();
  private File krbDir;
  private MiniKdc kdc;
  private String realm;

  private MiniDFSCluster dfs;
  private MiniYARNCluster yarn;
  private final AtomicBoolean stopped = new AtomicBoolean(false);

  private MiniHadoop(Map<String, String> opts) {
    this.dir = new File(opts.getOrDefault("dir", ".")).getAbsoluteFile();
    this.confDir = new File(opts.getOrDefault("conf-dir", new File(dir, "conf").getPath())).getAbsoluteFile();
    this.nnPort = Integer.parseInt(opts.getOrDefault("nn-port", "0"));
    this.nmMemoryMb = Integer.parseInt(opts.getOrDefault("nm-memory-mb", "8192"));
    this.nmVcores = Integer.parseInt(opts.getOrDefault("nm-vcores", "8"));
    this.startYarn = !opts.containsKey("no-yarn");
    this.exitOnStdinEof = opts.containsKey("exit-on-stdin-eof");
    this.user = opts.getOrDefault("user", System.getProperty("user.name"));
    this.secure = opts.containsKey("secure");
    for (String u : opts.getOrDefault("secure-users", "alice,bob").split(",")) {
      if (!u.trim().isEmpty()) {
        secureUsers.add(u.trim());
      }
    }
  }

  public static void main(String[] args) throws Exception {
    Map<String, String> opts = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("--")) {
        throw new IllegalArgumentException("unexpected argument: " + a);
      }
      String key = a.substring(2);
      if (key.equals("no-yarn") || key.equals("exit-on-stdin-eof") || key.equals("secure")) {
        opts.put(key, "true");
      } else {
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException("missing value for " + a);
        }
        opts.put(key, args[++i]);
      }
    }
    MiniHadoop mh = new MiniHadoop(opts);
    Runtime.getRuntime().addShutdownHook(new Thread(mh::stop, "harness-shutdown"));
    try {
      mh.start();
    } catch (Throwable t) {
      log("startup failed: " + t);
      t.printStackTrace();
      mh.stop();
      Runtime.getRuntime().halt(2);
    }
    mh.waitForStopRequest();
    mh.stop();
    log("bye");
    System.exit(0);
  }

  private static void log(String msg) {
    System.out.println("[harness] " + msg);
    System.out.flush();
  }

  private void start() throws Exception {
    long t0 = System.currentTimeMillis();
    Files.deleteIfExists(new File(dir, "ready.json").toPath());
    Files.deleteIfExists(new File(dir, "stopped").toPath());
    Files.deleteIfExists(new File(dir, "stop").toPath());
    File tmp = new File(dir, "tmp");
    tmp.mkdirs();

    if (secure) {
      startKdc();
    }
    Configuration conf = new YarnConfiguration(new HdfsConfiguration());
    conf.set("hadoop.tmp.dir", tmp.getAbsolutePath());
    conf.set("hadoop.security.authentication", "simple");
    conf.set("hadoop.proxyuser." + user + ".hosts", "*");
    conf.set("hadoop.proxyuser." + user + ".groups", "*");
    // ---- HDFS
    conf.setBoolean("dfs.permissions.enabled", true);
    conf.setInt("dfs.replication", 1);
    conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
    conf.set("dfs.namenode.servicerpc-bind-host", "127.0.0.1");
    conf.set("dfs.namenode.http-bind-host", "127.0.0.1");
    conf.set("dfs.namenode.http-address", "127.0.0.1:0");
    conf.set("dfs.namenode.https-address", "127.0.0.1:0");
    conf.set("dfs.datanode.address", "127.0.0.1:0");
    conf.set("dfs.datanode.http.address", "127.0.0.1:0");
    conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    conf.setBoolean("dfs.namenode.acls.enabled", true);
    conf.setLong("dfs.namenode.fs-limits.min-block-size", 0);
    conf.setBoolean("dfs.client.use.datanode.hostname", false);
    // ---- YARN
    String containerOpts = System.getProperty("harness.container.java.opts", "").trim();
    conf.setBoolean(YarnConfiguration.YARN_MINICLUSTER_FIXED_PORTS, false);
    conf.setInt(YarnConfiguration.NM_PMEM_MB, nmMemoryMb);
    // MiniYARNCluster overrides the NM memory with this one (default 4096).
    conf.setInt("yarn.minicluster.yarn.nodemanager.resource.memory-mb", nmMemoryMb);
    conf.setInt(YarnConfiguration.NM_VCORES, nmVcores);
    conf.setBoolean("yarn.nodemanager.resource.detect-hardware-capabilities", false);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 128);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, nmMemoryMb);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_VCORES, nmVcores);
    conf.setFloat("yarn.scheduler.capacity.maximum-am-resource-percent", 0.8f);
    conf.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
    conf.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, false);
    conf.setBoolean("yarn.nodemanager.disk-health-checker.enable", false);
    conf.setFloat("yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage", 100.0f);
    conf.setLong("yarn.nodemanager.disk-health-checker.min-free-space-per-disk-mb", 0);
    conf.setBoolean(YarnConfiguration.LOG_AGGREGATION_ENABLED, false);
    // keep the RM's node-attribute/label stores on local disk, not in HDFS
    conf.set("yarn.node-attribute.fs-store.root-dir", new File(dir, "yarn-store/node-attribute").toURI().toString());
    conf.set("yarn.node-labels.fs-store.root-dir", new File(dir, "yarn-store/node-labels").toURI().toString());
    conf.setBoolean(YarnConfiguration.TIMELINE_SERVICE_ENABLED, false);
    conf.setInt(YarnConfiguration.RM_AM_MAX_ATTEMPTS, 1);
    // > 0 keeps container dirs around but makes NM shutdown wait ~10 s for pending deletions.
    conf.setInt("yarn.nodemanager.delete.debug-delay-sec", 0);
    conf.setLong("yarn.nodemanager.sleep-delay-before-sigkill.ms", 250);
    conf.setLong("yarn.nodemanager.process-kill-wait.ms", 1000);
    conf.set(YarnConfiguration.NM_CONTAINER_EXECUTOR,
        "org.apache.hadoop.yarn.server.nodemanager.DefaultContainerExecutor");
    String adminEnv = "MALLOC_ARENA_MAX=4";
    if (!containerOpts.isEmpty()) {
      adminEnv += ",JDK_JAVA_OPTIONS=" + containerOpts;
    }
    // LD_PRELOAD library rewriting bind(wildcard) to loopback (see cluster_pack_harness/loopback.py)
    String preload = System.getProperty("harness.container.ld.preload", "").trim();
    if (!preload.isEmpty()) {
      adminEnv += ",LD_PRELOAD=" + preload;
    }
    conf.set(YarnConfiguration.NM_ADMIN_USER_ENV, adminEnv);
    conf.set(YarnConfiguration.NM_ENV_WHITELIST,
        "JAVA_HOME,HADOOP_COMMON_HOME,HADOOP_HDFS_HOME,HADOOP_CONF_DIR,CLASSPATH_PREPEND_DISTCACHE,"
            + "HADOOP_YARN_HOME,HADOOP_HOME,HADOOP_MAPRED_HOME,PATH,LANG,TZ");
    conf.set("yarn.app.mapreduce.am.command-opts", ("-Xmx512m " + containerOpts).trim());
    conf.set("mapreduce.admin.map.child.java.opts", containerOpts);
    conf.set("mapreduce.admin.reduce.child.java.opts", containerOpts);
    if (secure) {
      secureConf(conf);
    }

    // ---- start HDFS
    File dfsBase = new File(dir, "dfs");
    log("starting MiniDFSCluster in " + dfsBase);
    dfs = new MiniDFSCluster.Builder(conf, dfsBase)
        .numDataNodes(1)
        .nameNodePort(nnPort)
        .nameNodeHttpPort(0)
        .format(true)
        .checkExitOnShutdown(false)
        .build();
    dfs.waitActive();
    DistributedFileSystem fs = dfs.getFileSystem();
    long deadline = System.currentTimeMillis() + 60_000;
    while (fs.setSafeMode(HdfsConstants.SafeModeAction.SAFEMODE_GET)) {
      if (System.currentTimeMillis() > deadline) {
        throw new IOException("HDFS did not leave safe mode within 60s");
      }
      Thread.sleep(200);
    }
    String defaultFs = "hdfs://127.0.0.1:" + dfs.getNameNodePort();
    conf.set("fs.defaultFS", defaultFs);
    prepareHdfs(fs);
    log("HDFS up at " + defaultFs + " after " + (System.currentTimeMillis() - t0) + " ms");

    // ---- start YARN
    if (startYarn) {
      log("starting MiniYARNCluster");
      yarn = new MiniYARNCluster("cluster-pack-harness", 1, 1, 1, 1);
      yarn.init(conf);
      yarn.start();
      if (!yarn.waitForNodeManagersToConnect(60_000)) {
        throw new IOException("NodeManager did not register with the ResourceManager within 60s");
      }
      waitForRunningNode(yarn.getConfig());
      log("YARN up, RM at " + yarn.getConfig().get(YarnConfiguration.RM_ADDRESS) + " after "
          + (System.currentTimeMillis() - t0) + " ms");
    }

    writeConf(conf, defaultFs);
    writeReady(defaultFs);
    log("READY after " + (System.currentTimeMillis() - t0) + " ms");
  }

  private void prepareHdfs(FileSystem fs) throws IOException {
    String group = "supergroup";
    try {
      String[] groups = UserGroupInformation.createRemoteUser(user).getGroupNames();
      if (groups.length > 0) {
        group = groups[0];
      }
    } catch (Exception e) {
      // keep supergroup
    }
    Path tmp = new Path("/tmp");
    fs.mkdirs(tmp);
    fs.setPermission(tmp, new FsPermission((short) 01777));
    Path home = new Path("/user/" + user);
    fs.mkdirs(home);
    fs.setPermission(new Path("/user"), new FsPermission((short) 0755));
    fs.setOwner(home, user, group);
    fs.setPermission(home, new FsPermission((short) 0755));
    for (String u : secure ? secureUsers : new ArrayList<String>()) {
      Path h = new Path("/user/" + u);
      fs.mkdirs(h);
      fs.setOwner(h, u, u);
      fs.setPermission(h, new FsPermission((short) 0755));
    }
  }

  // ------------------------------------------------------------------ secure mode

  private String principal(String name) {
    return name + "@" + realm;
  }

  /** KDC on loopback, one keytab for the daemons, one per user, a krb5.conf for Java and MIT clients. */
  private void startKdc() throws Exception {
    long t0 = System.currentTimeMillis();
    krbDir = new File(dir, "kerberos");
    krbDir.mkdirs();
    restrict(krbDir, true);
    Properties kconf = MiniKdc.createConf();
    kconf.setProperty(MiniKdc.KDC_BIND_ADDRESS, "localhost");
    kconf.setProperty(MiniKdc.MIN_TICKET_LIFETIME, "1000");
    kdc = new MiniKdc(kconf, new File(dir, "kdc"));
    kdc.start();
    realm = kdc.getRealm();
    File serviceKeytab = new File(krbDir, "service.keytab");
    kdc.createPrincipal(serviceKeytab, "hdfs/localhost", "HTTP/localhost");
    restrict(serviceKeytab, false);
    for (String u : secureUsers) {
      File kt = new File(krbDir, u + ".keytab");
      kdc.createPrincipal(kt, u);
      restrict(kt, false);
    }
    // One krb5.conf for the daemons (this JVM), Java clients (-Djava.security.krb5.conf) and MIT
    // clients (KRB5_CONFIG): TCP only, no DNS, and a ticket cache that is never the system one.
    String krb5 = "[libdefaults]\n"
        + "  default_realm = " + realm + "\n"
        + "  dns_lookup_kdc = false\n"
        + "  dns_lookup_realm = false\n"
        + "  dns_canonicalize_hostname = false\n"
        + "  rdns = false\n"
        + "  udp_preference_limit = 1\n"
        + "  forwardable = true\n"
        + "  default_ccache_name = FILE:" + new File(krbDir, "ccache-default").getAbsolutePath() + "\n"
        + "[realms]\n"
        + "  " + realm + " = {\n"
        + "    kdc = localhost:" + kdc.getPort() + "\n"
        + "  }\n"
        + "[domain_realm]\n"
        + "  localhost = " + realm + "\n"
        + "  127.0.0.1 = " + realm + "\n";
    File krb5conf = new File(krbDir, "krb5.conf");
    Files.write(krb5conf.toPath(), krb5.getBytes(StandardCharsets.UTF_8));
    System.setProperty("java.security.krb5.conf", krb5conf.getAbsolutePath());
    KerberosName.resetDefaultRealm();
    log("KDC up on localhost:" + kdc.getPort() + ", realm " + realm + ", principals for hdfs/localhost, "
        + "HTTP/localhost, " + String.join(", ", secureUsers) + " after " + (System.currentTimeMillis() - t0) + " ms");
  }

  /** Owner-only permissions (keytabs are credentials). */
  private static void restrict(File f, boolean directory) {
    f.setReadable(false, false);
    f.setWritable(false, false);
    f.setExecutable(false, false);
    f.setReadable(true, true);
    f.setWritable(true, true);
    if (directory) {
      f.setExecutable(true, true);
    }
  }

  private void secureConf(Configuration conf) {
    String keytab = new File(krbDir, "service.keytab").getAbsolutePath();
    String service = principal("hdfs/localhost");
    String http = principal("HTTP/localhost");
    conf.set("hadoop.security.authentication", "kerberos");
    conf.setBoolean("hadoop.security.authorization", false);
    // users of the KDC have no Unix account here: give them groups without a shell lookup
    StringBuilder groups = new StringBuilder("dr.who=;hdfs=hdfs,supergroup");
    for (String u : secureUsers) {
      groups.append(';').append(u).append('=').append(u);
    }
    conf.set("hadoop.user.group.static.mapping.overrides", groups.toString());
    // ---- HDFS (as Hadoop's SaslDataTransferTestCase, with ignore.secure.ports instead of HTTPS)
    conf.set("dfs.namenode.kerberos.principal", service);
    conf.set("dfs.namenode.keytab.file", keytab);
    conf.set("dfs.datanode.kerberos.principal", service);
    conf.set("dfs.datanode.keytab.file", keytab);
    conf.set("dfs.web.authentication.kerberos.principal", http);
    conf.set("dfs.web.authentication.kerberos.keytab", keytab);
    conf.set("dfs.namenode.kerberos.internal.spnego.principal", http);
    conf.setBoolean("dfs.block.access.token.enable", true);
    conf.set("dfs.data.transfer.protection", "authentication");
    conf.set("dfs.http.policy", "HTTP_ONLY");
    conf.setBoolean("ignore.secure.ports.for.testing", true);
    conf.setInt("ipc.client.connect.max.retries.on.sasl", 10);
    // ---- YARN
    conf.set(YarnConfiguration.RM_PRINCIPAL, service);
    conf.set(YarnConfiguration.RM_KEYTAB, keytab);
    conf.set(YarnConfiguration.NM_PRINCIPAL, service);
    conf.set(YarnConfiguration.NM_KEYTAB, keytab);
    conf.set("yarn.resourcemanager.webapp.spnego-principal", http);
    conf.set("yarn.resourcemanager.webapp.spnego-keytab-file", keytab);
    conf.set("yarn.nodemanager.webapp.spnego-principal", http);
    conf.set("yarn.nodemanager.webapp.spnego-keytab-file", keytab);
    conf.setBoolean("yarn.resourcemanager.webapp.delegation-token-auth-filter.enabled", false);
    SecurityUtil.setAuthenticationMethod(UserGroupInformation.AuthenticationMethod.KERBEROS, conf);
    UserGroupInformation.setConfiguration(conf);
  }

  private void waitForRunningNode(Configuration yconf) throws Exception {
    YarnClient client = YarnClient.createYarnClient();
    client.init(new YarnConfiguration(yconf));
    client.start();
    try {
      long deadline = System.currentTimeMillis() + 60_000;
      while (true) {
        List<NodeReport> nodes = client.getNodeReports(NodeState.RUNNING);
        if (!nodes.isEmpty() && nodes.get(0).getCapability().getMemorySize() > 0) {
          log("RUNNING node " + nodes.get(0).getNodeId() + " capability " + nodes.get(0).getCapability());
          return;
        }
        if (System.currentTimeMillis() > deadline) {
          throw new IOException("no RUNNING NodeManager within 60s");
        }
        Thread.sleep(200);
      }
    } finally {
      client.stop();
    }
  }

  private static void property(StringBuilder sb, String name, String value) {
    if (value == null) {
      return;
    }
    sb.append("  <property>\n    <name>").append(escape(name)).append("</name>\n    <value>")
        .append(escape(value)).append("</value>\n  </property>\n");
  }

  private static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }

  private static void writeXml(File f, Map<String, String> props) throws IOException {
    StringBuilder sb = new StringBuilder();
    sb.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb.append("<!-- written by cluster-pack harness (MiniHadoop) -->\n<configuration>\n");
    for (Map.Entry<String, String> e : props.entrySet()) {
      property(sb, e.getKey(), e.getValue());
    }
    sb.append("</configuration>\n");
    File tmp = new File(f.getPath() + ".tmp");
    Files.write(tmp.toPath(), sb.toString().getBytes(StandardCharsets.UTF_8));
    Files.move(tmp.toPath(), f.toPath(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  private void writeConf(Configuration conf, String defaultFs) throws IOException {
    confDir.mkdirs();
    Map<String, String> core = new LinkedHashMap<>();
    core.put("fs.defaultFS", defaultFs);
    core.put("hadoop.security.authentication", secure ? "kerberos" : "simple");
    if (secure) {
      core.put("hadoop.user.group.static.mapping.overrides", conf.get("hadoop.user.group.static.mapping.overrides"));
    }
    writeXml(new File(confDir, "core-site.xml"), core);

    Map<String, String> hdfs = new LinkedHashMap<>();
    hdfs.put("dfs.replication", "1");
    hdfs.put("dfs.permissions.enabled", "true");
    hdfs.put("dfs.namenode.rpc-address", "127.0.0.1:" + dfs.getNameNodePort());
    hdfs.put("dfs.namenode.http-address", "127.0.0.1:" + dfs.getNameNode().getHttpAddress().getPort());
    hdfs.put("dfs.client.use.datanode.hostname", "false");
    if (secure) {
      for (String k : new String[] {"dfs.namenode.kerberos.principal", "dfs.datanode.kerberos.principal",
          "dfs.web.authentication.kerberos.principal", "dfs.block.access.token.enable",
          "dfs.data.transfer.protection", "dfs.http.policy"}) {
        hdfs.put(k, conf.get(k));
      }
    }
    writeXml(new File(confDir, "hdfs-site.xml"), hdfs);

    Map<String, String> y = new LinkedHashMap<>();
    if (yarn != null) {
      Configuration yc = yarn.getConfig();
      for (String k : new String[] {
          YarnConfiguration.RM_ADDRESS, YarnConfiguration.RM_SCHEDULER_ADDRESS,
          YarnConfiguration.RM_RESOURCE_TRACKER_ADDRESS, YarnConfiguration.RM_ADMIN_ADDRESS,
          YarnConfiguration.RM_WEBAPP_ADDRESS}) {
        y.put(k, yc.get(k));
      }
      y.put(YarnConfiguration.RM_HOSTNAME, "localhost");
      y.put(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB,
          conf.get(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB));
      y.put(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB,
          conf.get(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB));
      y.put(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_VCORES,
          conf.get(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_VCORES));
      y.put(YarnConfiguration.TIMELINE_SERVICE_ENABLED, "false");
      y.put(YarnConfiguration.LOG_AGGREGATION_ENABLED, "false");
      y.put(YarnConfiguration.NM_LOG_DIRS, yarn.getNodeManager(0).getConfig().get(YarnConfiguration.NM_LOG_DIRS));
      if (secure) {
        y.put(YarnConfiguration.RM_PRINCIPAL, conf.get(YarnConfiguration.RM_PRINCIPAL));
        y.put(YarnConfiguration.NM_PRINCIPAL, conf.get(YarnConfiguration.NM_PRINCIPAL));
      }
      // There is no Hadoop distribution: containers (skein's ApplicationMaster, MapReduce ...)
      // get the harness' own Maven classpath, prefixed with this conf dir.
      List<String> cp = new ArrayList<>();
      cp.add(confDir.getAbsolutePath());
      for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
        if (!e.isEmpty() && !e.contains("cluster-pack-harness") && !new File(e).getAbsoluteFile().equals(confDir)) {
          cp.add(e);
        }
      }
      y.put(YarnConfiguration.YARN_APPLICATION_CLASSPATH, String.join(",", cp));
    }
    writeXml(new File(confDir, "yarn-site.xml"), y);

    Map<String, String> mapred = new LinkedHashMap<>();
    mapred.put("mapreduce.framework.name", "yarn");
    writeXml(new File(confDir, "mapred-site.xml"), mapred);
  }

  private static String json(String s) {
    if (s == null) {
      return "null";
    }
    StringBuilder sb = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        sb.append('\\').append(c);
      } else if (c < 0x20) {
        sb.append(String.format("\\u%04x", (int) c));
      } else {
        sb.append(c);
      }
    }
    return sb.append('"').toString();
  }

  private void writeReady(String defaultFs) throws IOException {
    Map<String, String> r = new LinkedHashMap<>();
    r.put("pid", Long.toString(ProcessHandle.current().pid()));
    r.put("default_fs", json(defaultFs));
    r.put("namenode_port", Integer.toString(dfs.getNameNodePort()));
    r.put("namenode_http_port", Integer.toString(dfs.getNameNode().getHttpAddress().getPort()));
    r.put("conf_dir", json(confDir.getAbsolutePath()));
    r.put("user", json(user));
    r.put("hadoop_version", json(VersionInfo.getVersion()));
    r.put("java_version", json(System.getProperty("java.version")));
    r.put("java_home", json(System.getProperty("java.home")));
    r.put("yarn", yarn != null ? "true" : "false");
    r.put("secure", secure ? "true" : "false");
    if (secure) {
      r.put("realm", json(realm));
      r.put("kdc_port", Integer.toString(kdc.getPort()));
      r.put("krb5_conf", json(new File(krbDir, "krb5.conf").getAbsolutePath()));
      r.put("service_principal", json(principal("hdfs/localhost")));
      StringBuilder users = new StringBuilder("{");
      for (int i = 0; i < secureUsers.size(); i++) {
        String u = secureUsers.get(i);
        users.append(i > 0 ? ", " : "").append(json(u)).append(": {\"principal\": ")
            .append(json(principal(u))).append(", \"keytab\": ")
            .append(json(new File(krbDir, u + ".keytab").getAbsolutePath())).append('}');
      }
      r.put("users", users.append('}').toString());
    }
    if (yarn != null) {
      Configuration yc = yarn.getConfig();
      r.put("rm_address", json(yc.get(YarnConfiguration.RM_ADDRESS)));
      r.put("rm_scheduler_address", json(yc.get(YarnConfiguration.RM_SCHEDULER_ADDRESS)));
      r.put("rm_webapp_address", json(yc.get(YarnConfiguration.RM_WEBAPP_ADDRESS)));
      org.apache.hadoop.yarn.server.nodemanager.Context nmContext = yarn.getNodeManager(0).getNMContext();
      r.put("nm_address", json(nmContext.getNodeId().toString()));
      r.put("nm_webapp_address", json(nmContext.getNodeId().getHost() + ":" + nmContext.getHttpPort()));
      r.put("nm_log_dirs", json(yarn.getNodeManager(0).getConfig().get(YarnConfiguration.NM_LOG_DIRS)));
      r.put("nm_local_dirs", json(yarn.getNodeManager(0).getConfig().get(YarnConfiguration.NM_LOCAL_DIRS)));
    }
    StringBuilder sb = new StringBuilder("{\n");
    int i = 0;
    for (Map.Entry<String, String> e : r.entrySet()) {
      sb.append("  ").append(json(e.getKey())).append(": ").append(e.getValue());
      sb.append(++i < r.size() ? ",\n" : "\n");
    }
    sb.append("}\n");
    File tmp = new File(dir, "ready.json.tmp");
    Files.write(tmp.toPath(), sb.toString().getBytes(StandardCharsets.UTF_8));
    Files.move(tmp.toPath(), new File(dir, "ready.json").toPath(),
        StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  private void waitForStopRequest() throws InterruptedException {
    AtomicBoolean eof = new AtomicBoolean(false);
    if (exitOnStdinEof) {
      Thread reader = new Thread(() -> {
        byte[] buf = new byte[256];
        try (InputStream in = System.in) {
          while (in.read(buf) >= 0) {
            // drain
          }
        } catch (IOException e) {
          // treat as EOF
        }
        eof.set(true);
      }, "stdin-watch");
      reader.setDaemon(true);
      reader.start();
    }
    File stopFile = new File(dir, "stop");
    while (!stopped.get()) {
      if (stopFile.exists()) {
        log("stop file found");
        return;
      }
      if (eof.get()) {
        log("stdin closed");
        return;
      }
      Thread.sleep(250);
    }
  }

  /**
   * Without log aggregation the NodeManager schedules the deletion of each finished application's
   * container logs (yarn.nodemanager.log.retain-seconds later) and, on stop, waits 10 s for those
   * pending tasks. Tell its executor to drop them so that shutdown is quick; logs stay on disk.
   */
  private void dropPendingLogDeletions() {
    try {
      Object cm = yarn.getNodeManager(0).getNMContext().getContainerManager();
      Object handler = field(cm, "logHandler");
      if (handler != null && handler.getClass().getSimpleName().equals("NonAggregatingLogHandler")) {
        Object sched = field(handler, "sched");
        if (sched instanceof java.util.concurrent.ScheduledThreadPoolExecutor) {
          ((java.util.concurrent.ScheduledThreadPoolExecutor) sched)
              .setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        }
      }
    } catch (Throwable t) {
      log("could not drop pending log deletions (shutdown may take 10 s longer): " + t);
    }
  }

  private static Object field(Object target, String name) throws ReflectiveOperationException {
    for (Class<?> c = target.getClass(); c != null; c = c.getSuperclass()) {
      try {
        java.lang.reflect.Field f = c.getDeclaredField(name);
        f.setAccessible(true);
        return f.get(target);
      } catch (NoSuchFieldException e) {
        // try the superclass
      }
    }
    throw new NoSuchFieldException(name);
  }

  private void stop() {
    if (!stopped.compareAndSet(false, true)) {
      return;
    }
    // Never hang on the way out.
    Thread watchdog = new Thread(() -> {
      try {
        Thread.sleep(30_000);
        log("shutdown took more than 30s, halting");
        Runtime.getRuntime().halt(3);
      } catch (InterruptedException e) {
        // done
      }
    }, "shutdown-watchdog");
    watchdog.setDaemon(true);
    watchdog.start();
    log("stopping");
    new File(dir, "ready.json").delete();
    if (yarn != null) {
      dropPendingLogDeletions();
      try {
        yarn.stop();
      } catch (Throwable t) {
        log("error stopping YARN: " + t);
      }
    }
    if (dfs != null) {
      try {
        dfs.shutdown();
      } catch (Throwable t) {
        log("error stopping HDFS: " + t);
      }
    }
    if (kdc != null) {
      try {
        kdc.stop();
      } catch (Throwable t) {
        log("error stopping the KDC: " + t);
      }
    }
    try (OutputStream out = Files.newOutputStream(new File(dir, "stopped").toPath())) {
      out.write("stopped\n".getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      // ignore
    }
    log("stopped");
    watchdog.interrupt();
  }
}
