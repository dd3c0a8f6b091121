// Starts Swagger UI on the API's own document (kept out of the page: the CSP allows no inline script).
"use strict";
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.specUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,  // never ask an online validator: nothing leaves this host
});
