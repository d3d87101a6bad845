// Roles of the Event Grid system topic's identity on the relay storage account: it adds messages
// to the events queue and writes undeliverable events to the dead-letter container, nothing
// else. A module so that the assignment names can be derived from the principal id (known only
// once the topic exists): a re-created topic then gets new assignments instead of failing the
// redeploy with RoleAssignmentUpdateNotPermitted.

targetScope = 'resourceGroup'

@description('Name of the relay storage account (in this module\'s resource group).')
param storageAccountName string

@description('The queue Event Grid delivers BlobCreated events into.')
param queueName string

@description('The container Event Grid writes undeliverable events to.')
param deadLetterContainerName string

@description('Principal (object) id of the system topic\'s identity.')
param principalId string

var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: queueName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

// Storage Queue Data Message Sender, on the events queue only.
resource queueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, storageQueueDataMessageSender)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor, on the Event Grid dead-letter container only: Event Grid writes
// the undeliverable events there as blobs.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, principalId, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
