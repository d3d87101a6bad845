// Roles of the relay identity on the relay's own storage account. A module so that the
// assignment names can be derived from the principal id (known only once the identity exists):
// guid(scope, principalId, role). A re-created identity then gets new assignments, instead of
// failing the redeploy with RoleAssignmentUpdateNotPermitted on the old names.

targetScope = 'resourceGroup'

@description('Name of the relay storage account (in this module\'s resource group).')
param storageAccountName string

@description('Principal (object) id of the relay identity.')
param principalId string

// Built-in role definition ids (the same in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// Storage Blob Data Owner: the Functions host with an identity-based AzureWebJobsStorage needs
// Owner (not Contributor) on host storage: it manages the azure-webjobs-* containers and takes
// blob leases for the timer trigger's singleton lock and the listener locks. The relay's
// checkpoints (lease-serialised state blobs), dead letters and Flex's deployment package live in
// the same account, so this one assignment covers them.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, storageBlobDataOwner)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor: the queue trigger reads, updates (visibility) and deletes
// messages and creates `<queue>-poison` on the fifth failed dequeue, and the queue sink sends;
// Reader + Message Processor would not allow creating the poison queue.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, storageQueueDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor: the Functions host writes its diagnostic events to tables of
// its storage account (AzureWebJobsStorage), as Microsoft's Flex Consumption samples grant. The
// relay itself uses no table.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, storageTableDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
