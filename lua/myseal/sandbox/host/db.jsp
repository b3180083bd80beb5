<%@ page contentType="text/plain; charset=UTF-8" import="java.sql.*,javax.naming.InitialContext,javax.sql.DataSource" %><%
// The lab's application page: one request, one connection from the JNDI pool (jdbc/biobank),
// the number of patients and the TLS cipher of that session (empty over plain TCP).
DataSource ds = (DataSource) new InitialContext().lookup("java:comp/env/jdbc/biobank");
try (Connection c = ds.getConnection(); Statement st = c.createStatement()) {
   long patients;
   try (ResultSet r = st.executeQuery("SELECT COUNT(*) FROM patients")) { r.next(); patients = r.getLong(1); }
   String cipher = "";
   try (ResultSet r = st.executeQuery("SHOW SESSION STATUS LIKE 'Ssl_cipher'")) {
      if (r.next() && r.getString(2) != null) cipher = r.getString(2);
   }
   out.print("patients=" + patients + " cipher=" + cipher + "\n");
} catch (SQLException e) {
   response.setStatus(503);
   out.print("error=" + e.getMessage().replace('\n', ' ') + "\n");
}
%>