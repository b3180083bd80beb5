// JdbcProbe: connects with a JDBC URL and reports the TLS session, the way the
// application on Tomcat would. The app-tomcat runbook's probe step and the specs
// compile and run it through lua/myseal/jdbcprobe.lua.
//
//   printf '%s\n%s' URL PASSWORD | MYSEAL_JDBC_USER=.. \
//   java @OPTIONS-FILE -cp DRIVER.jar:DIR JdbcProbe
//
// The user comes from the environment; the URL (which may hold passwords) is the first
// line of stdin, the password the rest of it (UTF-8): neither is on the command line or
// in the environment. Prints
// "OK <tls version> <cipher>" and exits 0, or "FAIL <reason>" and exits 1.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;

public class JdbcProbe {
    public static void main(String[] args) {
        String user = System.getenv("MYSEAL_JDBC_USER");
        String input;
        try {
            input = new String(System.in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            System.out.println("FAIL cannot read the url and password from stdin: " + e);
            System.exit(2);
            return;
        }
        int nl = input.indexOf('\n');
        if (nl < 0) {
            System.out.println("FAIL stdin holds no url line");
            System.exit(2);
        }
        String url = input.substring(0, nl);
        String password = input.substring(nl + 1);
        try (Connection c = DriverManager.getConnection(url, user, password);
             Statement s = c.createStatement();
             ResultSet r = s.executeQuery(
                 "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
                 + "WHERE VARIABLE_NAME IN ('SSL_VERSION', 'SSL_CIPHER') ORDER BY VARIABLE_NAME DESC")) {
            StringBuilder out = new StringBuilder("OK");
            while (r.next()) {
                String v = r.getString(1);
                out.append(' ').append(v == null || v.isEmpty() ? "-" : v);
            }
            System.out.println(out);
        } catch (Exception e) {
            Throwable t = e;
            while (t.getCause() != null) t = t.getCause();
            String m = e.getMessage() == null ? e.toString() : e.getMessage();
            System.out.println("FAIL " + m.replace('\n', ' ') + " / " + t);
            System.exit(1);
        }
    }
}
