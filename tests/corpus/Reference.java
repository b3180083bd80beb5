// Reference.java: the JDK's own answers for tests/spec/corpus_spec.lua, many in one JVM (a JVM
// start costs more than the work). Nothing here decides anything: it prints what OpenJDK says.
//
//   java Reference keytool ENV:STORE...   keytool -list -v of each store, run in this JVM
//                                          ("== STORE" before each; its password in $ENV)
//   java Reference load ENV:STORE...      each store as the KeyStore API loads it: one line per
//                                          entry, "alias<TAB>kind<TAB>certificate SHA-256<TAB>chain
//                                          length<TAB>SHA-256 of the key's encoding" (keys and
//                                          secret keys decrypted with the store password)
//   java Reference lower FILE              each UTF-8 line of FILE lower-cased as the JDK's
//                                          keystores do it: toLowerCase(Locale.ENGLISH)
//   java Reference case-table              the C tables of core/pure/jdkcase.c: the JDK's
//                                          Character.toLowerCase, and which code points are cased
//
// Compile and run with: javac -d DIR Reference.java; java --add-opens
// java.base/sun.security.tools.keytool=ALL-UNNAMED -cp DIR Reference ...
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.Key;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.cert.Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

public class Reference {
   public static void main(String[] args) throws Exception {
      PrintStream out = new PrintStream(System.out, true, "UTF-8");
      switch (args[0]) {
         case "keytool": keytool(out, args); break;
         case "load": load(out, args); break;
         case "lower":
            for (String line : Files.readAllLines(Paths.get(args[1]), StandardCharsets.UTF_8))
               out.println(line.toLowerCase(Locale.ENGLISH));
            break;
         case "case-table": caseTable(out); break;
         default: throw new IllegalArgumentException(args[0]);
      }
   }

   static void keytool(PrintStream out, String[] args) throws Exception {
      Class<?> main = Class.forName("sun.security.tools.keytool.Main");
      Constructor<?> ctor = main.getDeclaredConstructor();
      ctor.setAccessible(true);
      Method run = main.getDeclaredMethod("run", String[].class, PrintStream.class);
      run.setAccessible(true);
      PrintStream stdout = System.out, stderr = System.err;
      for (int i = 1; i < args.length; i++) {
         String env = args[i].substring(0, args[i].indexOf(':')), file = args[i].substring(env.length() + 1);
         ByteArrayOutputStream buf = new ByteArrayOutputStream();
         PrintStream p = new PrintStream(buf, true, "UTF-8");
         System.setOut(p);
         System.setErr(p);
         Object rc;
         try {
            rc = run.invoke(ctor.newInstance(), new String[] { "-list", "-v", "-keystore", file,
               "-storepass:env", env }, p);
            if (rc == null) rc = 0;   // JDK 17's run returns nothing, and throws on an error
         } catch (java.lang.reflect.InvocationTargetException e) {
            p.println("keytool error: " + e.getCause());
            rc = 1;
         } finally {
            System.setOut(stdout);
            System.setErr(stderr);
         }
         out.println("== " + file + " (exit " + rc + ")");
         out.print(buf.toString("UTF-8"));
      }
   }

   static String hex(byte[] b) throws Exception {
      StringBuilder s = new StringBuilder();
      for (byte x : MessageDigest.getInstance("SHA-256").digest(b)) s.append(String.format("%02X", x));
      return s.toString();
   }

   static void load(PrintStream out, String[] args) throws Exception {
      for (int i = 1; i < args.length; i++) {
         String env = args[i].substring(0, args[i].indexOf(':')), file = args[i].substring(env.length() + 1);
         char[] pass = System.getenv(env).toCharArray();
         out.println("== " + file);
         KeyStore ks;
         try {
            ks = KeyStore.getInstance(new File(file), pass);
         } catch (Exception e) {
            out.println("ERROR\t" + e);
            continue;
         }
         List<String> aliases = Collections.list(ks.aliases());
         Collections.sort(aliases);
         for (String a : aliases) {
            String kind = ks.isCertificateEntry(a) ? "trusted"
               : ks.entryInstanceOf(a, KeyStore.SecretKeyEntry.class) ? "secret" : "key";
            Certificate c = ks.getCertificate(a);
            Certificate[] chain = ks.getCertificateChain(a);
            String keyDigest = "-";
            if (!kind.equals("trusted")) {
               try {
                  Key k = ks.getKey(a, pass);
                  keyDigest = k == null ? "null" : hex(k.getEncoded());
               } catch (Exception e) {
                  keyDigest = "ERROR " + e.getClass().getSimpleName();
               }
            }
            out.println(a + "\t" + kind + "\t" + (c == null ? "-" : hex(c.getEncoded())) + "\t"
               + (chain == null ? 0 : chain.length) + "\t" + keyDigest);
         }
      }
   }

   // Ranges { first, last, delta, step }: for cp = first, first + step, ... <= last,
   // Character.toLowerCase(cp) == cp + delta.
   static void caseTable(PrintStream out) {
      out.println("/* Character.toLowerCase of Java " + System.getProperty("java.version")
         + " (java Reference case-table) */");
      out.println("static const jc_range lower_ranges[] = {");
      int first = -1, last = -1, delta = 0, step = 0, count = 0;
      for (int cp = 0; cp <= 0x10FFFF + 1; cp++) {
         int d = cp <= 0x10FFFF ? Character.toLowerCase(cp) - cp : 0;
         if (d == 0) continue;
         if (first >= 0 && d == delta && (step == 0 ? cp - last <= 2 : cp - last == step)) {
            if (step == 0) step = cp - last;
            last = cp;
            continue;
         }
         if (first >= 0) {
            out.printf("  {0x%04X, 0x%04X, %d, %d},%n", first, last, delta, step == 0 ? 1 : step);
            count++;
         }
         first = last = cp;
         delta = d;
         step = 0;
      }
      if (first >= 0) out.printf("  {0x%04X, 0x%04X, %d, %d},%n", first, last, delta, step == 0 ? 1 : step);
      out.println("};");
      out.println("/* The code points Java's lower-casing takes as cased letters (Lu, Ll, Lt) */");
      out.println("static const jc_span cased_spans[] = {");
      int start = -1;
      for (int cp = 0; cp <= 0x110000; cp++) {
         int t = cp <= 0x10FFFF ? Character.getType(cp) : -1;
         boolean cased = t == Character.UPPERCASE_LETTER || t == Character.LOWERCASE_LETTER
            || t == Character.TITLECASE_LETTER;
         if (cased && start < 0) start = cp;
         if (!cased && start >= 0) {
            out.printf("  {0x%04X, 0x%04X},%n", start, cp - 1);
            start = -1;
         }
      }
      out.println("};");
   }
}
