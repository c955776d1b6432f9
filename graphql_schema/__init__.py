"""GraphQL glue: types, queries, mutations, permissions and error mapping. No business rules."""
